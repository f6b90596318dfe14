"""``contracts backup`` / ``restore`` through the real command: a backup taken while the store is
open and written (events still in the WAL) restores to a store whose hash chain verifies and which
holds exactly the events stored at the backup; PostgreSQL is refused with the documented procedure."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from domain.calendar import JST
from domain.contract import BillingCycle
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _contracts(*args: str, db: Path | None = None, database_url: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k}
    env["PYTHONPATH"] = str(ROOT)
    if db is not None:
        env["CONTRACTS_SQLITE_PATH"] = str(db)
    if database_url is not None:
        env["CONTRACTS_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM stored_events").fetchone()[0])


def _open(app: object, customer: str) -> None:
    at = datetime(2026, 1, 5, 10, tzinfo=JST).astimezone(UTC)
    cid = app.open_contract(customer, "kintone", "light", 5, {"name": f"{customer} K.K."}, at,  # type: ignore
                            cycle=BillingCycle.MONTHLY).aggregate_id
    app.approve(cid, at)  # type: ignore[attr-defined]


def test_backup_while_open_then_restore_verifies_the_chain_and_keeps_the_events(tmp_path: Path) -> None:
    db = tmp_path / "live.sqlite"
    process = bootstrap(Settings(database_url=None, sqlite_path=db))
    try:
        app = process.services.app
        for n in range(3):
            _open(app, f"B-{n}")
        assert Path(f"{db}-wal").stat().st_size > 0  # the events are (also) in the WAL: cp would miss them
        at_backup = _events(db)
        backup = tmp_path / "backup.sqlite"
        done = _contracts("backup", str(backup), db=db)
        assert done.returncode == 0, done.stderr
        _open(app, "AFTER")  # written after the backup: not in it
        assert _events(db) > at_backup
    finally:
        process.close()

    restored = tmp_path / "restored.sqlite"
    done = _contracts("restore", str(backup), db=restored)
    assert done.returncode == 0, done.stderr
    # 3 contracts x (opened, applied, concluded) + each customer's account (opened, contract registered)
    assert _events(restored) == at_backup == 15
    verified = _contracts("audit", "verify", "--json", db=restored)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] is True and report["checked"] == at_backup

    # over the live store too (nothing serving it): back to the three contracts
    done = _contracts("restore", str(backup), db=db)
    assert done.returncode == 0, done.stderr
    assert _events(db) == at_backup
    assert _contracts("audit", "verify", db=db).returncode == 0


def test_backup_refuses_an_existing_file_and_restore_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    process = bootstrap(Settings(database_url=None, sqlite_path=db))
    process.close()
    existing = tmp_path / "exists.sqlite"
    existing.write_text("not a database " * 20)
    assert _contracts("backup", str(existing), db=db).returncode == 2
    refused = _contracts("restore", str(existing), db=db)
    assert refused.returncode == 2 and "not a SQLite database" in refused.stderr
    assert existing.read_text() == "not a database " * 20
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    refused = _contracts("restore", str(empty), db=db)
    assert refused.returncode == 2 and "no event store" in refused.stderr


def test_postgresql_is_refused_with_the_documented_procedure() -> None:
    for command in ("backup", "restore"):
        done = _contracts(command, "x.dump", database_url="postgresql://postgres@127.0.0.1:5432/test")
        assert done.returncode == 2
        assert "pg_dump" in done.stderr and "docs/operations.md" in done.stderr
