"""One rebuild at a time (issue 21): two rebuilds would fill and drop the same ``rb_`` shadow tables,
so the store's rebuild lock (a PostgreSQL advisory lock, a ``flock`` beside the SQLite file) refuses a
second one at once, from another process too; and a PostgreSQL shadow gets its secondary indexes
only once it is full; and a rebuild reads only the keys it opens."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from histories import random_steps
from projection_kit import CONTRACTOR, paid_contract
from test_projection_rebuild import play_incrementally

from application.projections.projector import Projector
from infrastructure.bootstrap import Services, build_read_models, build_services
from infrastructure.read_side import RebuildFailed
from infrastructure.settings import Settings


@pytest.fixture
def other_services(services: Services, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """The same database opened again, as another process would (its own pool, its own store)."""
    if request.node.callspec.params["services"] == "sqlite":
        other = build_services(Settings(database_url=None, sqlite_path=tmp_path / "contracts.sqlite"))
    else:
        other = build_services(Settings(database_url=None), env=dict(request.getfixturevalue("fresh_pg_env")))
    yield other
    other.close()


def test_a_second_rebuild_while_one_runs_is_refused_and_changes_nothing(services: Services,
                                                                        other_services: Services) -> None:
    models = build_read_models(services)
    play_incrementally(services, models, random_steps(random.Random(5), 40), [(5, False)])
    live = models.store.dump()
    total = services.app.recorder.max_notification_id()
    entered, release = threading.Event(), threading.Event()
    original = Projector.process

    def held(self: Projector, batch: Any, source: Any) -> Any:
        entered.set()
        assert release.wait(30)
        return original(self, batch, source)

    results: list[Any] = []
    Projector.process = held  # type: ignore[method-assign]
    try:
        first = threading.Thread(target=lambda: results.append(models.runner.rebuild(progress=False, batch_size=10)))
        first.start()
        assert entered.wait(30)  # the first rebuild is folding its first batch into the shadow
        others = build_read_models(other_services)
        with pytest.raises(RebuildFailed, match="rebuild refused: another rebuild of these read tables"):
            others.runner.rebuild(progress=False, batch_size=10)
        assert others.store.dump() == live
        release.set()
        first.join(60)
    finally:
        release.set()
        Projector.process = original  # type: ignore[method-assign]
    assert results == [total]  # the first one was not disturbed: its shadow was not dropped or refilled
    assert models.store.dump() == live
    assert others.runner.rebuild(progress=False, batch_size=10) == total  # the lock went with the first
    assert others.store.dump() == live


@pytest.mark.postgres
def test_the_postgres_rebuild_lock_is_an_advisory_lock_released_with_its_session(pg_services: Services) -> None:
    models = build_read_models(pg_services)
    play_incrementally(pg_services, models, random_steps(random.Random(6), 20), [(5, False)])
    datastore: Any = pg_services.app.recorder.datastore  # type: ignore[attr-defined]
    key = f"{datastore.schema}.contracts.read_models.rebuild"
    holder = psycopg.connect(str(datastore.pool.conninfo), autocommit=True, **{
        k: v for k, v in datastore.pool.kwargs.items() if k in ("dbname", "host", "port", "user", "password")})
    assert holder.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone() == (True,)
    with pytest.raises(RebuildFailed, match="rebuild refused"):
        models.runner.rebuild(progress=False)
    holder.close()  # as when the process holding it dies
    assert models.runner.rebuild(progress=False) == pg_services.app.recorder.max_notification_id()


@pytest.mark.postgres
def test_a_postgres_shadow_gets_its_secondary_indexes_once_full(pg_services: Services) -> None:
    """Issue 21: while a rebuild fills the shadow it keeps only the indexes the rebuild reads (the keys;
    invoices by contract; payments by invoice); ``index_shadow`` adds the other twelve, named as the
    live ones with ``rb_`` (what the swap renames)."""
    models = build_read_models(pg_services)
    schema = pg_services.app.recorder.datastore.schema  # type: ignore[attr-defined]

    def indexes(prefix: str) -> set[str]:
        with pg_services.app.recorder.datastore.transaction(commit=False) as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND starts_with(tablename, %s)",
                        (schema, prefix))
            return {r["indexname"] for r in cur.fetchall()}

    shadow = models.store.shadow()
    try:
        assert indexes("rb_rm_") == {
            "rb_rm_invoices_pkey", "rb_rm_invoices_contract", "rb_rm_payments_pkey", "rb_rm_payments_invoice",
            "rb_rm_claims_pkey", "rb_rm_deadlines_pkey", "rb_rm_contracts_pkey", "rb_rm_event_times_pkey",
            "rb_rm_damaged_pkey", "rb_rm_transfers_pkey"}
        shadow.index_shadow()
        assert len(indexes("rm_")) == 22
        assert indexes("rb_rm_") == {"rb_" + name for name in indexes("rm_")}
    finally:
        shadow.drop()


def test_a_rebuild_reads_only_the_records_keys_of_issued_invoices(services: Services, other_services: Services,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipient an issued invoice seals is opened with the contract's records key (its id is the
    contract's); the contacts key is never used by a projection, so a rebuild (a cold key cache: another
    process) reads the records keys alone, one query per batch, none one by one, and every invoice row
    still has the recipient's counterparty index."""
    ids = [paid_contract(services.app, f"K-{i}") for i in range(3)]
    models = build_read_models(other_services)
    keys: Any = other_services.app.mapper.keys  # type: ignore[attr-defined]
    prefetched: list[list[Any]] = []
    single_reads: list[Any] = []
    real_prefetch, real_read = keys.prefetch, keys._read
    monkeypatch.setattr(keys, "prefetch", lambda wanted: (prefetched.append(list(wanted)), real_prefetch(wanted))[1])
    monkeypatch.setattr(keys, "_read", lambda cid: (single_reads.append(cid), real_read(cid))[1])
    models.runner.rebuild(progress=False, batch_size=1000)
    assert prefetched == [ids]  # one batch: the three contracts' records keys, in log order
    assert single_reads == []
    rows = models.store.dump()["rm_invoices"]
    assert len(rows) == 3  # each contract's April invoice (approved on 24 March: its first month is April)
    index = models.counterparty_index
    assert index is not None
    counterparty = 14  # column of INVOICE_COLUMNS
    assert {row[counterparty] for row in rows} == {index(CONTRACTOR["name"])}
