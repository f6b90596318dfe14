"""The smaller holes of issue 14 (item 9), each reproduced as the attacker or the fault did it:

- login CSRF: a cross-site form posting a valid key to ``/ui/login`` with ``Origin: null``;
- disk full on the Idempotency-Key path: SQLite's ``database or disk is full`` (the store's
  page limit reached) and PostgreSQL's ``disk_full`` (SQLSTATE 53100, raised by the server) answer
  503 problem+json with ``Retry-After``, and no stack trace reaches the response or the log.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from reliability_kit import InProcessApi, apply_body, assert_problem, record_figures

pytestmark = [pytest.mark.reliability]


def _no_trace(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None, f"a stack trace was logged: {record.getMessage()}"
        assert "Traceback" not in record.getMessage()


@pytest.fixture
def pg_api(scratch_url: str) -> Iterator[InProcessApi]:
    api = InProcessApi.start(scratch_url)
    try:
        yield api
    finally:
        api.close()



@pytest.fixture
def sqlite_api(tmp_path: Path) -> Iterator[Any]:
    """The app over the embedded SQLite store in this process (the default deployment)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth import ROLES
    from application.api_keys import create_key
    from application.clock import SystemClock
    from infrastructure.bootstrap import build_api_store, build_read_models, build_services
    from infrastructure.settings import Settings

    services = build_services(Settings(database_url=None, sqlite_path=tmp_path / "c.sqlite"))
    store = build_api_store(services.app.env)
    store.setup()
    read_models = build_read_models(services, start_runner=True, poll_interval=0.02)
    app = create_app(services, read_models, SystemClock(), store, mode="production")
    keys = {role: create_key(store, role, f"{role}-k", datetime.now(UTC)) for role in ROLES}
    client = TestClient(app, raise_server_exceptions=False)
    try:
        yield client, keys, store
    finally:
        client.close()
        read_models.stop()
        store.close()
        services.close()


# --------------------------------------------------------------------------- login CSRF


@pytest.mark.postgres
def test_login_csrf_with_origin_null_is_refused(pg_api: InProcessApi) -> None:
    """A page on another site (or a sandboxed frame: ``Origin: null``) posts the attacker's key to
    the login form: the victim's browser must not end up logged in as the attacker."""
    c = pg_api.client
    form = {"key": pg_api.keys["auditor"], "next": "/ui/"}
    refused = 0
    for headers in ({"Origin": "null"}, {"Origin": "https://evil.example"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null", "Sec-Fetch-Site": "cross-site"}):
        r = c.post("/ui/login", data=form, headers=headers, follow_redirects=False)
        assert r.status_code == 403, (headers, r.status_code)
        assert "set-cookie" not in r.headers, headers
        refused += 1
    # the same form from the pages themselves still logs in: with its origin, or with ``null``
    # as a browser sends it under the pages' ``Referrer-Policy: no-referrer`` (Sec-Fetch-Site says
    # same-origin, which no other site's page can make it say)
    own = str(c.base_url).rstrip("/")
    for headers in ({"Origin": own, "Sec-Fetch-Site": "same-origin"},
                    {"Origin": "null", "Sec-Fetch-Site": "same-origin"}):
        r = c.post("/ui/login", data=form, headers=headers, follow_redirects=False)
        assert r.status_code == 303 and "set-cookie" in r.headers, headers
    record_figures("login_csrf", {"refused": refused})


# --------------------------------------------------------------------------- disk full


def _assert_storage_full(r: Any) -> None:
    problem = assert_problem(r, 503)
    assert problem["type"].endswith("service-unavailable"), problem
    assert int(r.headers["retry-after"]) > 0
    assert "incident" not in problem


def test_sqlite_disk_full_on_the_idempotency_path_is_503(sqlite_api: Any, caplog: pytest.LogCaptureFixture) -> None:
    """``sqlite3.OperationalError: database or disk is full`` on the API store's write (its page
    limit set to the file's size, so the next page it needs is refused as a full disk would)."""
    client, keys, store = sqlite_api
    h = {"X-API-Key": keys["billing"]}
    assert client.post("/v1/contracts", json=apply_body("FULL-0"), headers=h).status_code == 201
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {int(pages)}")
    caplog.clear()
    statuses = []
    for i in range(60):
        body = apply_body(f"FULL-{i + 1}")
        r = client.post("/v1/contracts", json=body, headers={**h, "Idempotency-Key": uuid.uuid4().hex * 3})
        statuses.append(r.status_code)
        if r.status_code != 201:
            break
    assert statuses[-1] == 503, statuses
    _assert_storage_full(r)
    _no_trace(caplog)
    record_figures("disk_full_sqlite", {"requests_until_full": len(statuses)})


@pytest.mark.postgres
def test_postgres_disk_full_on_the_idempotency_path_is_503(pg_api: InProcessApi, scratch_url: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """The server raises ``disk_full`` (53100) on the Idempotency-Key claim, as PostgreSQL does when
    it cannot extend a file; the key is not left claimed."""
    c, h = pg_api.client, pg_api.headers
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("CREATE OR REPLACE FUNCTION reliability_disk_full() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' "
                     "USING ERRCODE = 'disk_full'; END $$")
        conn.execute("CREATE TRIGGER reliability_disk_full BEFORE INSERT ON public.idempotency_keys "
                     "FOR EACH ROW EXECUTE FUNCTION reliability_disk_full()")
    try:
        caplog.clear()
        key = uuid.uuid4().hex
        r = c.post("/v1/contracts", json=apply_body("PGFULL-1"), headers=h(Idempotency_Key=key))
        _assert_storage_full(r)
        _no_trace(caplog)
    finally:
        with psycopg.connect(scratch_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER reliability_disk_full ON public.idempotency_keys")
    r = c.post("/v1/contracts", json=apply_body("PGFULL-1"), headers=h(Idempotency_Key=key))
    assert r.status_code == 201, r.text  # room again: the same key runs the command
