"""The service clock: settable in sandbox mode only (403 in production), forward only, shared
through the database, and the business time of every command."""

from __future__ import annotations

from pathlib import Path

from api_harness import Harness, iso, jst

from infrastructure.bootstrap import build_api_store
from infrastructure.clock_store import DatabaseClock


def test_clock_cannot_be_set_in_production(production_api: Harness) -> None:
    api = production_api
    r = api.put("/v1/clock", {"now": "2030-01-01T00:00:00Z"})
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:contracts:problem:sandbox-only"
    assert api.put("/v1/clock", {"now": "2030-01-01T00:00:00Z"}, role="operator").status_code == 403
    clock = api.get("/v1/clock", "auditor").json()
    assert clock["mode"] == "production" and clock["settable"] is False
    assert not clock["now"].startswith("2030")


def test_sandbox_clock_is_the_business_time_of_commands(api: Harness) -> None:
    api.set_clock(jst(2026, 3, 31, 23, 30))  # 2026-03-31 JST: still March
    cid = api.apply("C-400")
    assert api.post(f"/v1/contracts/{cid}/approve").json()["first_month"] == "2026-04"
    view = api.get("/v1/clock", "auditor").json()
    assert view == {"now": "2026-03-31T14:30:00Z", "today": "2026-03-31", "mode": "sandbox", "settable": True}
    assert api.put("/v1/clock", {"now": "2026-04-01T00:00:00+09:00"}).json()["today"] == "2026-04-01"


def test_sandbox_clock_only_moves_forward(api: Harness) -> None:
    api.set_clock(jst(2026, 5, 1))
    back = api.put("/v1/clock", {"now": iso(jst(2026, 4, 1))})
    assert back.status_code == 409 and back.json()["article"] == "sandbox clock" and back.json()["field"] == "now"
    assert api.get("/v1/clock").json()["today"] == "2026-05-01"
    naive = api.put("/v1/clock", {"now": "2026-06-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["field"] == "now"
    assert api.put("/v1/clock", {"now": "2026-06-01T00:00:00Z"}, role="auditor").status_code == 403


def test_sandbox_clock_is_shared_through_the_database(api: Harness, tmp_path: Path) -> None:
    api.set_clock(jst(2026, 7, 1))
    other_process = build_api_store(api.app.env)
    try:
        assert DatabaseClock(other_process).now() == jst(2026, 7, 1)
    finally:
        other_process.close()


def test_advance_refuses_a_month_that_has_not_begun(api: Harness) -> None:
    cid = api.concluded("C-401")
    r = api.post(f"/v1/contracts/{cid}/advance", {"month": "2026-04"}, role="operator")
    assert r.status_code == 409 and r.json()["article"] == "Art. 8" and r.json()["field"] == "month"
    api.set_clock(jst(2026, 4, 1, 0, 5))
    ran = api.advance(cid)
    assert ran["month"] == "2026-04" and ran["state"] == "active" and ran["events"] == 2  # + InvoiceIssued
    assert api.advance(cid)["events"] == 0  # idempotent
