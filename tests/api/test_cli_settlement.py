"""``contracts settlement`` (rule book 7) on SQLite and PostgreSQL: the unapplied list from the
transfers read table, apply, reverse, show and the customer's account, each with ``--json``; the
commands record the console operator as their actor (section 13) and a refusal exits 2 naming the
rule. Figures: garoon standard x 10 monthly = 11,000 yen a month with tax, approved 2026-03-24,
April's invoice due 2026-05-31."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict
from support.postgres import create_scratch_database, drop_database

from api.cli import main
from application.actors import actor_of
from domain.calendar import JST, Month
from domain.contract import BillingCycle
from infrastructure.bootstrap import build_read_models, build_services
from infrastructure.settings import Settings

CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo"}
PAYER = "ﾌﾒｲ ｼｮｳｼﾞ"


def jst(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 10, tzinfo=JST).astimezone(UTC)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(["settlement", *argv])
    captured = capsys.readouterr()
    out = captured.out.strip()
    return code, (json.loads(out) if "--json" in argv and code == 0 else out), captured.err


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[tuple[Settings, Callable[[], None]]]:
    """The settings the CLI reads, and how the read tables catch up: the CLI runs the projection
    itself on SQLite; on PostgreSQL a runner process would (played here between the commands)."""
    monkeypatch.setenv("CONTRACTS_SQLITE_PATH", str(tmp_path / "c.sqlite"))
    if request.param == "sqlite":
        monkeypatch.delenv("CONTRACTS_DATABASE_URL", raising=False)
        yield Settings(database_url=None, sqlite_path=tmp_path / "c.sqlite"), lambda: None
        return
    admin: str = request.getfixturevalue("pg_dsn")
    dsn = create_scratch_database(admin)
    parts = conninfo_to_dict(dsn)
    url = (f"postgresql://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}:"
           f"{parts.get('port', 5432)}/{parts['dbname']}")
    monkeypatch.setenv("CONTRACTS_DATABASE_URL", url)
    settings = Settings(database_url=url)

    def project() -> None:
        services = build_services(settings)
        try:
            build_read_models(services).runner.catch_up()
        finally:
            services.close()
    try:
        yield settings, project
    finally:
        drop_database(admin, dsn)


def test_rule_7_settlement_commands(store: tuple[Settings, Callable[[], None]],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings, project = store
    services = build_services(settings)
    try:
        app = services.app
        cid = app.open_contract("C-CLI", "garoon", "standard", 10, CONTRACTOR, jst(2026, 3, 9),
                                cycle=BillingCycle.MONTHLY).aggregate_id
        app.approve(cid, jst(2026, 3, 24))
        app.advance(cid, Month(2026, 4))
        later = app.receive_transfer(None, PAYER, "CLI-2", 11_000, datetime(2026, 5, 21).date(), jst(2026, 5, 25))
        first = app.receive_transfer(None, PAYER, "CLI-1", 4_000, datetime(2026, 5, 20).date(), jst(2026, 5, 25))
    finally:
        services.close()
    first_id, later_id = str(first.transfer.id), str(later.transfer.id)

    project()
    code, listed, _ = _run(capsys, "unapplied", "--json")
    assert code == 0 and [t["id"] for t in listed["data"]] == [first_id, later_id]  # value date 05-20 first
    assert listed["data"][0]["payer_name"] == PAYER and listed["has_more"] is False
    code, text, _ = _run(capsys, "unapplied", "--limit", "1")
    assert code == 0 and text.startswith(f"{first_id}\tunapplied\t2026-05-20\t4000 yen")

    code, applied, _ = _run(capsys, "apply", first_id, "--customer", "C-CLI", "--json")
    assert code == 0 and applied["status"] == "applied" and applied["customer_number"] == "C-CLI"
    assert [a["amount"] for a in applied["allocations"]] == [4_000]  # of April's 11,000
    code, account, _ = _run(capsys, "account", "C-CLI", "--json")
    assert code == 0 and account["contracts"] == [str(cid)] and account["outstanding"] == 7_000  # 11,000 - 4,000

    code, reversed_, _ = _run(capsys, "reverse", first_id, "--reason", "bounced", "--on", "2026-05-26", "--json")
    assert code == 0 and reversed_["status"] == "reversed" and reversed_["reversed_on"] == "2026-05-26"
    code, account, _ = _run(capsys, "account", "C-CLI", "--json")
    assert account["outstanding"] == 11_000  # unpaid again
    code, shown, _ = _run(capsys, "show", later_id, "--json")
    assert code == 0 and shown["status"] == "unapplied" and shown["amount"] == 11_000

    code, _, err = _run(capsys, "reverse", first_id, "--reason", "again", "--json")
    assert code == 2 and err.startswith("error: rule book 7: ") and PAYER not in err
    code, _, err = _run(capsys, "show", str(uuid.uuid4()))
    assert code == 2 and "no such transfer" in err
    project()
    code, listed, _ = _run(capsys, "unapplied", "--json")
    assert [t["id"] for t in listed["data"]] == [later_id]

    services = build_services(settings)
    try:
        actors = {actor_of(e).kind for e in services.app.events.get(first.transfer.id)  # type: ignore[union-attr]
                  if type(e).__name__ in ("Applied", "Reversed")}
    finally:
        services.close()
    assert actors == {"operator"}
