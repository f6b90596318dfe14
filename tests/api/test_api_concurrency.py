"""Optimistic concurrency over HTTP: ETag = contract version, If-Match on commands, 412 when stale."""

from __future__ import annotations

import threading

from api_harness import Harness, jst


def test_etag_and_if_match(any_api: Harness) -> None:
    api = any_api
    cid = api.apply("C-200")
    etag = api.get(f"/v1/contracts/{cid}").headers["etag"]
    assert etag == '"2"'
    ok = api.post(f"/v1/contracts/{cid}/approve", If_Match=etag)
    assert ok.status_code == 200 and ok.headers["etag"] == '"3"'
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)  # ServicePeriodStarted and InvoiceIssued: version 5
    events = api.event_count()
    stale = api.post(f"/v1/contracts/{cid}/changes", {"users": 12}, If_Match='"3"')
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["type"] == "urn:contracts:problem:precondition-failed"
    assert stale.json()["field"] == "If-Match" and "version 5" in stale.json()["detail"]
    assert api.event_count() == events
    fresh = api.post(f"/v1/contracts/{cid}/changes", {"users": 12}, If_Match='"5"')
    assert fresh.status_code == 200
    assert api.post(f"/v1/contracts/{cid}/termination-notice", {}, If_Match="*").status_code == 200
    assert api.post(f"/v1/contracts/{cid}/contractor", {"contractor": {"name": "X"}},
                    If_Match='W/"7"').status_code == 200


def test_malformed_if_match_is_422(api: Harness) -> None:
    cid = api.apply("C-201")
    r = api.post(f"/v1/contracts/{cid}/approve", If_Match="yesterday")
    assert r.status_code == 422 and r.json()["field"] == "If-Match"


def test_concurrent_commands_without_if_match_store_once(api: Harness) -> None:
    cid = api.apply("C-202")
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def go() -> None:
        barrier.wait()
        statuses.append(api.post(f"/v1/contracts/{cid}/approve").status_code)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert statuses.count(200) == 1 and set(statuses) == {200, 409}
    assert [e["type"] for e in api.get(f"/v1/contracts/{cid}/events").json()["events"]].count("Approved") == 1
