"""Safe by default, through the real ``contracts`` command: production refuses to serve without
an API key (and says how to make one) and warns without a master key; a command that fires
deadlines on a sandbox store keeps the stored sandbox clock; a database error is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from support.live_server import free_port, live_server

from application.api_keys import create_key
from domain.calendar import JST
from domain.contract import BillingCycle
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k}
    env["PYTHONPATH"] = str(ROOT)
    env.update({f"CONTRACTS_{k.upper()}": v for k, v in settings.items()})
    return env


def _contracts(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_production_refuses_to_serve_without_an_api_key_and_warns_without_a_master_key(tmp_path: Path) -> None:
    env = _env(sqlite_path=str(tmp_path / "p.sqlite"))
    served = _contracts("serve", "--port", str(free_port()), env=env)
    assert served.returncode == 2
    assert "no active API key" in served.stderr and "contracts keys create --role operator" in served.stderr
    assert "WARNING: CONTRACTS_MASTER_KEY is not set" in served.stderr
    assert "Traceback" not in served.stderr


def test_production_serves_once_a_key_exists(tmp_path: Path) -> None:
    env = _env(sqlite_path=str(tmp_path / "p.sqlite"), master_key="A" * 43 + "=")
    made = _contracts("keys", "create", "--role", "operator", "--name", "ops", env=env)
    assert made.returncode == 0, made.stderr
    with live_server(env, ready_seconds=60, stop_seconds=20) as server:  # it serves: a key exists
        pass
    assert "CONTRACTS_MASTER_KEY is not set" not in server.output


def test_sweep_without_sandbox_mode_keeps_a_sandbox_stores_clock(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    process = bootstrap(Settings(database_url=None, sqlite_path=db, mode="sandbox"))
    try:
        assert process.store is not None
        concluded = datetime(2026, 1, 5, 10, tzinfo=JST).astimezone(UTC)
        process.clock.set(concluded)  # type: ignore[attr-defined]
        app = process.services.app
        cid = app.open_contract("C-1", "kintone", "light", 5, {"name": "Sandbox K.K."}, concluded,
                                cycle=BillingCycle.MONTHLY).aggregate_id
        app.approve(cid, concluded)
        process.clock.set(datetime(2026, 2, 20, 10, tzinfo=JST).astimezone(UTC))  # type: ignore[attr-defined]
        create_key(process.store, "operator", "ops", concluded)
    finally:
        process.close()
    env = _env(sqlite_path=str(db))  # production mode
    swept = _contracts("sweep", "--json", env=env, timeout=120)
    assert swept.returncode == 0, swept.stderr
    assert "sandbox store" in swept.stderr
    report = json.loads(swept.stdout)
    assert report["today"] == "2026-02-20" and report["by_kind"] == {"month_start": 1} and report["failures"] == []
    listed = _contracts("keys", "list", "--json", env=env)
    assert [(k["name"], k["role"], k["revoked_at"]) for k in json.loads(listed.stdout)] == [("ops", "operator", None)]
    process = bootstrap(Settings(database_url=None, sqlite_path=db, mode="sandbox"))
    try:
        contract = process.services.app.get_contract(cid)
        # concluded 2026-01-05: service from 2026-02 (Art. 8.1); at the sandbox clock (02-20) only
        # February has started. The real date (months later) would have started every month since.
        assert sorted(str(i.period) for i in contract.ledger.invoices.values()) == ["2026-02"]
    finally:
        process.close()


def test_an_unreachable_database_is_one_line_on_stderr(tmp_path: Path) -> None:
    env = _env(database_url="postgresql://postgres@127.0.0.1:1/test")  # nothing listens on port 1
    for command in (("keys", "list"), ("sweep", "--no-progress")):
        done = _contracts(*command, env=env, timeout=120)
        assert done.returncode == 1, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: database postgresql://postgres@127.0.0.1:1/test: ")
