"""Login sessions of the web pages stored in the API store (SQLite and PostgreSQL): hashed ids,
idle and absolute expiry, logout deletes the row, and a session made by one app instance is
honoured by another over the same store (``contracts serve --workers N`` keeps the pages)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_harness import Harness
from fastapi.testclient import TestClient
from ui_kit import browser_client

from api.app import create_app
from api.ui.sessions import COOKIE, SessionStore
from application.ports import ApiStore
from infrastructure.bootstrap import build_api_store

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiStore]:
    if request.param == "sqlite":
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.sqlite")}
    else:
        env = request.getfixturevalue("fresh_pg_env")
    the_store = build_api_store(env)
    the_store.setup()
    yield the_store
    the_store.close()


def test_sessions_expire_when_idle_and_after_the_absolute_limit(store: ApiStore) -> None:
    sessions = SessionStore(store, idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    sid = sessions.create("h", T0)
    assert sessions.get(sid, T0 + timedelta(minutes=29)) is not None
    assert sessions.get(sid, T0 + timedelta(minutes=61)) is None  # idle 32 minutes
    assert len(sessions) == 0  # the expired row was deleted when read
    sid = sessions.create("h", T0)
    for minutes in range(20, 8 * 60, 20):  # seen every 20 minutes: never idle
        assert sessions.get(sid, T0 + timedelta(minutes=minutes)) is not None
    assert sessions.get(sid, T0 + timedelta(hours=8, minutes=10)) is None  # absolute limit
    assert sessions.get("no-such-session", T0) is None and sessions.get("x" * 101, T0) is None


def test_logins_purge_expired_rows_and_logout_deletes_the_row(store: ApiStore) -> None:
    sessions = SessionStore(store, idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    old = sessions.create("a", T0)
    kept = sessions.create("b", T0 + timedelta(minutes=20))
    sessions.create("c", T0 + timedelta(minutes=40))  # "a" idle 40 minutes: purged; "b" idle 20: kept
    assert len(sessions) == 2
    assert sessions.get(old, T0 + timedelta(minutes=40)) is None
    sessions.drop(kept)
    assert len(sessions) == 1 and sessions.get(kept, T0 + timedelta(minutes=41)) is None


def test_only_the_hash_of_the_session_id_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = build_api_store({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    store.setup()
    sid = SessionStore(store).create("keyhash", T0)
    store.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT session_hash, key_hash FROM ui_sessions").fetchall()
    assert rows == [(hashlib.sha256(sid.encode()).hexdigest(), "keyhash")]
    assert all(sid not in value for row in rows for value in row)


def test_a_session_made_by_one_app_instance_is_honoured_by_another(api: Harness) -> None:
    """Two app instances (as two ``--workers`` processes) over one database: log in on the first,
    read pages on the second; log out on the second, and the first refuses the cookie."""
    other_store = build_api_store(api.services.app.env)  # the other process's own connection
    other = create_app(api.services, api.client.app.state.ctx.read_models, api.clock, other_store,
                       mode=api.mode)
    assert other is not api.client.app
    first = browser_client(api, "auditor")
    cookie = first.cookies.get(COOKIE)
    assert cookie
    second = TestClient(other, raise_server_exceptions=False)
    second.cookies.set(COOKIE, cookie, path="/ui")
    r = second.get("/ui/", follow_redirects=False)
    assert r.status_code == 200, r.headers.get("location")
    assert second.post("/ui/logout", follow_redirects=False).status_code == 303
    assert first.get("/ui/", follow_redirects=False).status_code == 303  # the row is gone for both
    second.close()
    other_store.close()
