"""Rule book 7: the transfers read model. Unapplied transfers (payer unknown) are listed for an
operator from an indexed table, oldest value date first, never by scanning the event log; the
table holds no personal data (spec 10); a rebuild gives the same rows; migration 2 backfills it
for stores written before it existed. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

from projection_kit import jst, paid_contract

from infrastructure.bootstrap import Services
from infrastructure.read_side import ReadModelsImpl

PAYER = "ﾌﾒｲ ﾌﾘｺﾐﾆﾝ"


def _unapplied(services: Services, bank_reference: str, amount: int, value_date: date) -> Any:
    return services.app.receive_transfer(None, PAYER, bank_reference, amount, value_date,
                                         jst(2026, 5, 25)).transfer.id


def test_rule_7_unapplied_transfers_are_listed_from_the_read_model(services: Services,
                                                                   read_models: ReadModelsImpl) -> None:
    app = services.app
    paid_contract(app, "C-UNAPPLIED")
    late = _unapplied(services, "REF-B", 11_000, date(2026, 5, 22))
    early = _unapplied(services, "REF-A", 5_000, date(2026, 5, 20))
    read_models.runner.catch_up()
    assert read_models.unapplied_transfer_ids() == [early, late]  # value date 05-20 before 05-22
    assert read_models.unapplied_transfer_ids(limit=1) == [early]
    rows = read_models.store.dump()["rm_transfers"]  # (id, status, value date, amount, position)
    assert sorted(r[:4] for r in rows) == sorted([(str(early), "unapplied", "2026-05-20", 5_000),
                                                 (str(late), "unapplied", "2026-05-22", 11_000)])
    assert PAYER not in repr(read_models.store.dump())  # no payer name in any read table (spec 10)

    app.apply_unapplied(early, "C-UNAPPLIED", jst(2026, 5, 26))  # 5,000 of April's 24,200
    app.reverse_transfer(late, "bounced", date(2026, 5, 26), jst(2026, 5, 26))
    read_models.runner.catch_up()
    assert read_models.unapplied_transfer_ids() == []
    statuses = {r[0]: r[1] for r in read_models.store.dump()["rm_transfers"]}
    assert statuses == {str(early): "applied", str(late): "reversed"}

    incremental = read_models.store.dump()
    read_models.runner.rebuild(progress=False, batch_size=3)
    assert read_models.store.dump() == incremental


def _forget_transfers(store: Any) -> None:
    """The read tables as a store written before the transfers table existed left them: no rows."""
    with store._write(-1, -1) as cur:  # noqa: SLF001 - the test plays the old version's store
        cur.execute(f"DELETE FROM {store.prefix}rm_transfers")


def test_rule_7_the_backfill_fills_the_table_from_the_log_and_the_runner_agrees(services: Services,
                                                                               read_models: ReadModelsImpl) -> None:
    """Migration 2's backfill, on both stores: the rows come from the log whatever the runner's
    position; a runner that then sees the same events changes nothing (rows only move forward)."""
    from application.projections.transfers import backfill_transfers

    app = services.app
    paid_contract(app, "C-BACKFILL")
    kept = _unapplied(services, "REF-K", 3_000, date(2026, 5, 21))
    used = _unapplied(services, "REF-U", 4_000, date(2026, 5, 20))
    app.apply_unapplied(used, "C-BACKFILL", jst(2026, 5, 26))
    read_models.runner.catch_up()
    expected = read_models.store.dump()
    _forget_transfers(read_models.store)
    assert read_models.unapplied_transfer_ids() == []
    assert backfill_transfers(app, read_models.store) == 2
    assert read_models.store.dump() == expected
    assert read_models.unapplied_transfer_ids() == [kept]
    read_models.runner.rebuild(progress=False)  # the runner folds the same events again from 0
    assert read_models.store.dump() == expected


def test_rule_7_contracts_migrate_backfills_a_store_from_before_the_table(tmp_path: Any) -> None:
    """``contracts migrate`` on a SQLite store whose schema is at version 1: migration 2 runs once."""
    import sqlite3

    from infrastructure.bootstrap import build_read_models, build_services
    from infrastructure.schema import SCHEMA_VERSION, migrate, schema_version
    from infrastructure.settings import Settings

    settings = Settings(database_url=None, sqlite_path=tmp_path / "old.sqlite")
    services = build_services(settings)
    models = build_read_models(services)
    try:
        tid = _unapplied(services, "REF-OLD", 2_000, date(2026, 5, 19))
        models.runner.catch_up()
        _forget_transfers(models.store)
    finally:
        models.close()
        services.close()
    with sqlite3.connect(settings.sqlite_path) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version > 1")
    assert schema_version(settings) == 1
    assert migrate(settings) == [2, 3] and SCHEMA_VERSION == 3  # 3: contract search (issue 19), a no-op here
    assert migrate(settings) == []  # once
    services = build_services(settings)
    models = build_read_models(services)
    try:
        assert models.unapplied_transfer_ids() == [tid]
    finally:
        models.close()
        services.close()
