"""The command line: ``contracts keys ...`` and ``contracts serve`` (a real uvicorn process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infrastructure.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_keys_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CONTRACTS_SQLITE_PATH", str(tmp_path / "c.sqlite"))
    monkeypatch.delenv("CONTRACTS_DATABASE_URL", raising=False)
    assert main(["keys", "create", "--role", "billing", "--name", "erp"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("ck_") and len(key) > 40
    assert main(["keys", "create", "--role", "billing", "--name", "erp"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "erp\tbilling" in listed and key not in listed
    assert main(["keys", "revoke", "--name", "erp"]) == 0
    assert main(["keys", "revoke", "--name", "erp"]) == 2
    with pytest.raises(SystemExit):
        main(["keys", "create", "--role", "admin", "--name", "x"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_with_docs_health_and_the_api(tmp_path: Path) -> None:
    env = {**os.environ, "CONTRACTS_SQLITE_PATH": str(tmp_path / "served.sqlite"), "CONTRACTS_MODE": "sandbox"}
    env.pop("CONTRACTS_DATABASE_URL", None)
    cli = [sys.executable, "-m", "infrastructure.cli"]
    created = subprocess.run([*cli, "keys", "create", "--role", "billing", "--name", "erp"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=True)
    key = created.stdout.strip()
    port = _free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.2)
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "Contract lifecycle API"
        assert httpx.get(f"{base}/docs").status_code == 200
        assert httpx.get(f"{base}/v1/clock").status_code == 401
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.put(f"{base}/v1/clock", json={"now": "2026-03-02T10:00:00+09:00"},
                         headers=headers).status_code == 200
        r = httpx.post(f"{base}/v1/contracts", headers=headers, json={
            "customer_number": "S-1", "service": "kintone", "grade": "light", "users": 5,
            "contractor": {"name": "Served K.K."}, "billing_cycle": "monthly"})
        assert r.status_code == 201, r.text
        cid = r.json()["contract_id"]
        assert httpx.post(f"{base}/v1/contracts/{cid}/approve", headers=headers).status_code == 200
        assert httpx.get(f"{base}/v1/contracts/{cid}/invoices", headers=headers).json()["invoices"] == []
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    output = server.stdout.read() if server.stdout else ""
    assert "Traceback" not in output, output
    assert key not in output and "Served K.K." not in output  # no secrets or personal data in the log
