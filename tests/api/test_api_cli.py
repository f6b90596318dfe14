"""The command line: ``contracts keys ...`` and ``contracts serve`` (a real uvicorn process)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support.live_server import create_key, free_port, live_server, sandbox_env

from api.cli import main


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


def test_serve_answers_with_docs_health_and_the_api(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path / "served.sqlite")
    key = create_key(env, "billing", "erp")
    with live_server(env) as server:
        base = server.base
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
    # no secrets or personal data in the log
    assert key not in server.output and "Served K.K." not in server.output


def test_serve_workers_refused_on_sqlite_or_with_projections(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from api.cli.serve import workers_refusal
    from infrastructure.settings import Settings

    monkeypatch.delenv("CONTRACTS_DATABASE_URL", raising=False)
    monkeypatch.setenv("CONTRACTS_SQLITE_PATH", str(tmp_path / "w.sqlite"))
    assert main(["serve", "--workers", "2", "--no-ui", "--port", str(free_port())]) == 2
    assert "needs PostgreSQL" in caplog.text
    assert not (tmp_path / "w.sqlite").exists()  # refused before building anything
    sqlite = Settings(database_url=None)
    pg = Settings(database_url="postgresql://u@127.0.0.1:5432/db")
    assert workers_refusal(1, sqlite, with_projections=True) is None
    assert workers_refusal(0, pg, with_projections=False) == "--workers must be at least 1"
    assert workers_refusal(2, pg, with_projections=False) is None  # with the pages: their sessions are rows
    assert "projections run" in (workers_refusal(2, pg, with_projections=True) or "")


def test_worker_app_factory_builds_its_own_parts_and_closes_them(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    from datetime import UTC, datetime

    from fastapi.testclient import TestClient

    from api.cli.serve import _WORKER_OPTIONS, worker_app
    from application.api_keys import create_key
    from infrastructure.api_store import SQLiteApiStore

    monkeypatch.delenv("CONTRACTS_DATABASE_URL", raising=False)
    monkeypatch.setenv("CONTRACTS_SQLITE_PATH", str(tmp_path / "f.sqlite"))
    monkeypatch.setenv(_WORKER_OPTIONS, json.dumps({"scheduler": False}))
    app = worker_app()
    store = SQLiteApiStore(str(tmp_path / "f.sqlite"))
    key = create_key(store, "auditor", "factory", datetime.now(UTC))
    store.close()
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/clock", headers={"X-API-Key": key}).status_code == 200
        r = client.get("/ui/", follow_redirects=False)  # a worker serves the pages (sessions in the database)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    ctx = app.state.ctx
    with pytest.raises(Exception):  # noqa: B017, PT011 - closed on shutdown: the pool refuses work
        ctx.store.find_key("x")
