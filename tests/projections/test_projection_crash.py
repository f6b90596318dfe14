"""Exactly-once under crashes and outages: ``kill -9`` of ``contracts projections run`` mid-stream,
several times, then a restart, leaves every read table equal to a clean rebuild; a runner whose
database connections are terminated resumes by itself."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from histories import History, random_steps
from projection_kit import jst, paid_contract

from domain.calendar import Month
from infrastructure.bootstrap import Services, build_read_models, build_services
from infrastructure.read_side import ReadModelsImpl
from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.reliability, pytest.mark.slow]


def _stream(services: Services, contracts: int) -> int:
    """A few thousand events: monthly contracts over two years, plus a random history."""
    app = services.app
    for i in range(contracts):
        cid = paid_contract(app, f"K-{i}", service="garoon", users=10 + i % 5, until=Month(2028, 3))
        if i % 3 == 0:
            from datetime import date

            from domain.billing import invoice_id
            app.record_payment(cid, invoice_id(cid, "2026-04"), 1_000, date(2026, 6, 10), jst(2026, 6, 10))
    world = History(app, "W")
    for step in random_steps(random.Random(7), 150):
        world.play(step)
    return app.recorder.max_notification_id() or 0


def _start_runner(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "projections", "run", "--batch-size", "7",
         "--poll-interval", "0.05"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _wait_position(models: ReadModelsImpl, above: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        position = models.position()
        if position > above:
            return position
        assert proc.poll() is None, "the runner died on its own"
        time.sleep(0.002)
    raise AssertionError(f"runner did not pass position {above} in {timeout}s")


def _kill_restart_compare(services: Services, env: dict[str, str], tmp_path: Path) -> None:
    last = _stream(services, contracts=60)
    assert last > 1500
    models = build_read_models(services)
    log = tmp_path / "runner.log"
    kills_mid_stream = 0
    position = 0
    for round_ in range(4):
        proc = _start_runner(env, log)
        try:
            # let it commit a few batches past where the previous one died, then kill -9
            position = _wait_position(models, position + 7 * (1 + round_), proc)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        killed_at = models.position()
        kills_mid_stream += killed_at < last
        position = killed_at
    assert kills_mid_stream >= 3, f"the runner finished before it could be killed ({log.read_text()[-2000:]})"

    proc = _start_runner(env, log)  # the restart resumes from the stored position
    try:
        _wait_position(models, last - 1, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    incremental = models.store.dump()
    assert incremental["tracking"] == [(last,)]
    assert len(incremental["rm_event_times"]) == len({row[0] for row in incremental["rm_event_times"]})
    models.runner.rebuild(progress=False)
    assert models.store.dump() == incremental


def test_kill_9_mid_stream_then_restart_equals_clean_rebuild_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "contracts.sqlite"
    services = build_services(Settings(database_url=None, sqlite_path=path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k}
    env["CONTRACTS_SQLITE_PATH"] = str(path)
    try:
        _kill_restart_compare(services, env, tmp_path)
    finally:
        services.close()


def _pg_url(pg_env: dict[str, str]) -> str:
    e = pg_env
    password = f":{e['POSTGRES_PASSWORD']}" if e.get("POSTGRES_PASSWORD") else ""
    return (f"postgresql://{e['POSTGRES_USER']}{password}@{e['POSTGRES_HOST']}:{e['POSTGRES_PORT']}/"
            f"{e['POSTGRES_DBNAME']}")


@pytest.mark.postgres
def test_kill_9_mid_stream_then_restart_equals_clean_rebuild_on_postgres(pg_services: Services,
                                                                         fresh_pg_env: dict[str, str],
                                                                         tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k}
    env["CONTRACTS_DATABASE_URL"] = _pg_url(fresh_pg_env)
    # the library reads <APP NAME>_<KEY> before <KEY>: this points the CLI at the test's schema
    env["CONTRACTS_POSTGRES_SCHEMA"] = fresh_pg_env["POSTGRES_SCHEMA"]
    _kill_restart_compare(pg_services, env, tmp_path)


@pytest.mark.postgres
def test_runner_recovers_after_its_connections_are_terminated(fresh_pg_env: dict[str, str],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """pg_terminate_backend on every connection of the runner: it backs off, reconnects and
    resumes from its tracking position without a restart."""
    writer = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    reader = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    models = build_read_models(reader, poll_interval=0.05)
    models.runner.max_backoff = 0.5
    caplog.set_level(logging.WARNING, logger="contracts.projections")
    try:
        first = paid_contract(writer.app, "R-1", until=Month(2026, 6))
        models.start_runner()
        assert models.wait_for(writer.app.recorder.max_notification_id() or 0, timeout=10)
        dsn = " ".join(f"{k}={v}" for k, v in {
            "host": fresh_pg_env["POSTGRES_HOST"], "port": fresh_pg_env["POSTGRES_PORT"],
            "user": fresh_pg_env["POSTGRES_USER"], "dbname": fresh_pg_env["POSTGRES_DBNAME"],
            "password": fresh_pg_env["POSTGRES_PASSWORD"]}.items() if v)
        with psycopg.connect(dsn, autocommit=True) as admin:
            for _ in range(3):  # a few times, while the runner polls
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                ).fetchone()
                assert killed is not None and killed[0] >= 1
                time.sleep(0.3)
        writer.close()  # the writer's pooled connections died too; it is not under test here
        writer = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
        second = paid_contract(writer.app, "R-2", until=Month(2026, 8))
        writer.app.advance(first, Month(2026, 8))
        last = writer.app.recorder.max_notification_id() or 0
        assert models.wait_for(last, timeout=30), caplog.text
        assert models.runner.running_in_thread
        assert [i["period"] for i in models.invoices(second)] == ["2026-04", "2026-05", "2026-06", "2026-07",
                                                                  "2026-08"]
        incremental = models.store.dump()
        models.stop()
        models.runner.rebuild(progress=False)
        assert models.store.dump() == incremental
    finally:
        models.stop()
        reader.close()
        writer.close()


def _two_runners(first: Services, second: Services) -> None:
    last = _stream(first, contracts=15)
    a, b = build_read_models(first, batch_size=5), build_read_models(second, batch_size=3)
    a.runner.start_in_thread()
    b.runner.start_in_thread()
    try:
        assert a.wait_for(last, timeout=60)
    finally:
        a.stop()
        b.stop()
    incremental = a.store.dump()
    a.runner.rebuild(progress=False)
    assert a.store.dump() == incremental


def test_two_runners_at_once_never_double_count_on_sqlite(tmp_path: Path) -> None:
    """Each batch checks the stored position inside its write transaction: the slower runner's
    batch is refused (StalePosition), it re-reads and carries on."""
    settings = Settings(database_url=None, sqlite_path=tmp_path / "c.sqlite")
    first, second = build_services(settings), build_services(settings)
    try:
        _two_runners(first, second)
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_two_runners_at_once_never_double_count_on_postgres(fresh_pg_env: dict[str, str]) -> None:
    first = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    second = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    try:
        _two_runners(first, second)
    finally:
        first.close()
        second.close()
