"""``contracts sweep`` and ``contracts scheduler --once`` as a user runs them (subprocess, SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from scheduler_kit import CONTRACTOR, jst

from domain.contract import BillingCycle
from infrastructure.bootstrap import build_services
from infrastructure.settings import Settings


def contracts(db: Path, *args: str, mode: str = "production") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k}
    env |= {"CONTRACTS_SQLITE_PATH": str(db), "CONTRACTS_MODE": mode}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])


def seed(db: Path) -> list[str]:
    services = build_services(Settings(sqlite_path=db, database_url=None))
    try:
        ids = []
        for n in range(3):
            r = services.app.open_contract(f"CLI{n}", "kintone", "light", 5, CONTRACTOR, jst(2026, 3, 9),
                                           cycle=BillingCycle.MONTHLY)
            services.app.approve(r.aggregate_id, jst(2026, 3, 24))  # first month April 2026 (Art. 8.1)
            ids.append(str(r.aggregate_id))
        return ids
    finally:
        services.close()


def event_names(db: Path, contract_id: str) -> list[str]:
    import uuid

    services = build_services(Settings(sqlite_path=db, database_url=None))
    try:
        return [type(e).__name__ for e in services.app.events.get(uuid.UUID(contract_id))]
    finally:
        services.close()


def test_sweep_command_in_sandbox_mode_uses_the_service_clock(tmp_path: Path) -> None:
    from infrastructure.bootstrap import build_api_store
    from infrastructure.clock_store import DatabaseClock

    db = tmp_path / "c.sqlite"
    ids = seed(db)
    store = build_api_store({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)})
    store.setup()
    DatabaseClock(store).set(jst(2026, 4, 1, 9))  # a sandbox client moved the clock to April 1st
    store.close()
    done = contracts(db, "sweep", "--no-progress", mode="sandbox")
    assert done.returncode == 0, done.stderr
    assert "sweep to 2026-04-01: fired 3 deadlines (month_start=3), 6 events" in done.stdout
    assert event_names(db, ids[0])[-2:] == ["ServicePeriodStarted", "InvoiceIssued"]
    assert "fired month_start for contract" in done.stderr and "Example Trading" not in done.stderr
    again = contracts(db, "sweep", "--no-progress", mode="sandbox")
    assert "fired 0 deadlines" in again.stdout
    later = contracts(db, "sweep", "--no-progress", "--until", "2026-04-02", mode="sandbox")
    assert later.returncode == 2 and "cannot sweep past today" in later.stdout


def test_scheduler_once_catches_up_with_the_system_clock(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    ids = seed(db)
    done = contracts(db, "scheduler", "--once")
    assert done.returncode == 0, done.stderr
    names = event_names(db, ids[0])
    assert names[3] == "ServicePeriodStarted"  # April 2026, then everything due up to today
    if date.today() >= date(2026, 6, 1):  # the April invoice (due 05-31) was never paid
        assert "PaymentOverdue" in names


def test_a_second_scheduler_is_not_the_leader(tmp_path: Path) -> None:
    from infrastructure.scheduler import FileLock

    db = tmp_path / "c.sqlite"
    seed(db)
    holder = FileLock(Path(f"{db}.scheduler.lock"))
    assert holder.acquire()  # another scheduler process leads
    try:
        once = contracts(db, "scheduler", "--once")
        assert once.returncode == 3 and "not the leader" in once.stdout
        sweep = contracts(db, "sweep", "--no-progress")
        assert sweep.returncode == 3 and "--force" in sweep.stdout
        forced = contracts(db, "sweep", "--no-progress", "--force")
        assert forced.returncode == 0, forced.stderr
    finally:
        holder.release()


def test_serve_runs_the_scheduler_in_process_and_a_clock_move_fires_deadlines(tmp_path: Path) -> None:
    """``contracts serve`` (embedded default, sandbox): projections and scheduler run in the API
    process; a client moving the service clock sees the deadlines fire without waiting a tick."""
    import time
    import uuid

    from infrastructure.bootstrap import build_api_store, build_read_models, start_background_workers
    from infrastructure.clock_store import DatabaseClock

    db = tmp_path / "c.sqlite"
    ids = seed(db)
    services = build_services(Settings(sqlite_path=db, database_url=None, mode="sandbox"))
    store = build_api_store(services.app.env)
    store.setup()
    clock = DatabaseClock(store)
    clock.set(jst(2026, 3, 25, 9))
    read_models = build_read_models(services, clock=clock)
    stop = start_background_workers(services, read_models, clock)
    try:
        first = uuid.UUID(ids[0])
        clock.set(jst(2026, 4, 1, 9))  # what PUT /v1/clock does
        deadline = time.monotonic() + 10  # the sandbox tick is 2 s; the trigger makes it immediate
        while time.monotonic() < deadline and services.app.get_contract(first).version < 5:
            time.sleep(0.02)
        assert [type(e).__name__ for e in services.app.events.get(first)][-2:] == ["ServicePeriodStarted",
                                                                                  "InvoiceIssued"]
    finally:
        stop()
        store.close()
        services.close()
