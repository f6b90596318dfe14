"""The runner inside a process: read-your-writes through ``wait_for`` (embedded SQLite default),
prompt wake-up by the event table's NOTIFY on PostgreSQL, and the CLI commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from projection_kit import paid_contract

from domain.calendar import Month
from infrastructure.bootstrap import Services, build_read_models, build_services
from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_embedded_runner_thread_gives_read_your_writes(sqlite_services: Services) -> None:
    models = build_read_models(sqlite_services, poll_interval=5.0)
    assert models.in_process  # SQLite: the API process runs the projections
    models.start()
    try:
        cid = paid_contract(sqlite_services.app, "T-1", until=Month(2026, 5))
        position = sqlite_services.app.recorder.max_notification_id() or 0
        started = time.monotonic()
        assert models.wait_for(position, timeout=5)  # kicks the idle runner: no 5 s poll wait
        assert time.monotonic() - started < 2
        assert [i["period"] for i in models.invoices(cid)] == ["2026-04", "2026-05"]
    finally:
        models.stop()
    assert not models.runner.running_in_thread


@pytest.mark.postgres
def test_postgres_runner_wakes_on_notify(fresh_pg_env: dict[str, str]) -> None:
    """Another process's runner is woken by the library's NOTIFY, not by its poll interval."""
    writer = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    reader = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    models = build_read_models(reader, poll_interval=10.0)
    assert not models.in_process  # PostgreSQL: ``contracts projections run`` is its own process
    models.start_runner()
    try:
        time.sleep(0.5)  # the runner is now idle, listening
        paid_contract(writer.app, "T-2", until=Month(2026, 4))
        position = writer.app.recorder.max_notification_id() or 0
        started = time.monotonic()
        # another process's view: poll the store without kicking the runner
        while models.store.position() < position and time.monotonic() - started < 5:
            time.sleep(0.01)
        assert models.store.position() >= position
        assert time.monotonic() - started < 3  # far below the 10 s poll interval
    finally:
        models.stop()
        reader.close()
        writer.close()


def test_cli_rebuild_and_status(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    services = build_services(Settings(database_url=None, sqlite_path=path))
    paid_contract(services.app, "T-3", until=Month(2026, 6))
    last = services.app.recorder.max_notification_id()
    services.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k} | {
        "CONTRACTS_SQLITE_PATH": str(path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", "projections", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=True)

    rebuilt = cli("rebuild")
    assert f"rebuilt read models from {last} events" in rebuilt.stdout
    assert "rebuild read models: 100%" in rebuilt.stderr  # the tqdm progress bar
    assert f"read models at position {last} of {last} (0 behind)" in cli("status").stdout


def test_cli_run_waits_for_an_unreachable_database_instead_of_exiting(tmp_path: Path) -> None:
    import signal
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k} | {
        "CONTRACTS_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/nothing"}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "projections", "run"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while "retrying in" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.1)
            assert "retrying in" in log.read_text()
            assert proc.poll() is None  # still there, waiting for the database
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
