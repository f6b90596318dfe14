"""Idempotency-Key: replay, mismatch, concurrent duplicates, what is stored, retention."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from api_harness import CONTRACTOR, Harness

APPLY = {"customer_number": "C-100", "service": "kintone", "grade": "standard", "users": 10,
         "contractor": CONTRACTOR, "billing_cycle": "monthly"}


def test_retry_with_same_key_and_body_replays_and_stores_nothing(any_api: Harness) -> None:
    api = any_api
    first = api.post("/v1/contracts", APPLY, Idempotency_Key="apply-1")
    assert first.status_code == 201
    events = api.event_count()
    # Same body, other key order and spacing: the same request.
    again = api.client.post("/v1/contracts", content=_reordered_json(APPLY),
                            headers=api.headers("billing", Idempotency_Key="apply-1", Content_Type="application/json"))
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"] and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert api.event_count() == events

    cid = first.json()["contract_id"]
    approve = api.post(f"/v1/contracts/{cid}/approve", Idempotency_Key="approve-1")
    approve_again = api.post(f"/v1/contracts/{cid}/approve", Idempotency_Key="approve-1")
    assert approve.status_code == approve_again.status_code == 200
    assert approve_again.json() == approve.json()
    assert api.event_count() == events + 1


def _reordered_json(body: dict[str, Any]) -> bytes:
    import json
    return json.dumps(dict(reversed(list(body.items()))), indent=2).encode()


def test_same_key_with_another_body_is_422(any_api: Harness) -> None:
    api = any_api
    assert api.post("/v1/contracts", APPLY, Idempotency_Key="k-1").status_code == 201
    events = api.event_count()
    other = api.post("/v1/contracts", {**APPLY, "users": 11}, Idempotency_Key="k-1")
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "urn:contracts:problem:idempotency-key-reused"
    assert other.json()["field"] == "Idempotency-Key"
    cid = api.get("/v1/events").json()["events"][0]["aggregate_id"]
    other_path = api.post(f"/v1/contracts/{cid}/approve", Idempotency_Key="k-1")
    assert other_path.status_code == 422
    assert api.event_count() == events


def test_keys_are_scoped_to_the_caller(api: Harness) -> None:
    assert api.post("/v1/contracts", APPLY, Idempotency_Key="shared").status_code == 201
    other_caller = api.post("/v1/contracts", {**APPLY, "customer_number": "C-101"}, role="operator",
                            Idempotency_Key="shared")
    assert other_caller.status_code == 201 and "idempotent-replayed" not in other_caller.headers


def test_business_refusals_are_replayed_too(api: Harness) -> None:
    cid = api.apply("C-102")
    refused = api.post(f"/v1/contracts/{cid}/changes", {"users": 12}, Idempotency_Key="chg-1")
    assert refused.status_code == 409  # not in service yet (Art. 10.1)
    api.post(f"/v1/contracts/{cid}/approve")
    replay = api.post(f"/v1/contracts/{cid}/changes", {"users": 12}, Idempotency_Key="chg-1")
    assert replay.status_code == 409 and replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["content-type"] == "application/problem+json" and replay.json() == refused.json()


def test_validation_failure_and_stale_if_match_do_not_use_up_the_key(api: Harness) -> None:
    cid = api.apply("C-103")
    bad = api.post(f"/v1/contracts/{cid}/reject", {"article": 5}, Idempotency_Key="rej-1")
    assert bad.status_code == 422  # nothing ran: the key was not claimed
    stale = api.post(f"/v1/contracts/{cid}/reject", {"article": "Art. 2.4.2"}, Idempotency_Key="rej-2",
                     If_Match='"1"')
    assert stale.status_code == 412  # transient: the key is released, not stored
    retried = api.post(f"/v1/contracts/{cid}/reject", {"article": "Art. 2.4.2"}, Idempotency_Key="rej-2",
                       If_Match='"2"')
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    late = api.post(f"/v1/contracts/{cid}/reject", {"article": "Art. 2.4.2"}, Idempotency_Key="rej-1")
    assert late.status_code == 409 and late.json()["article"] == "Art. 2.4"  # ran now: already rejected


def test_invalid_key_is_422(api: Harness) -> None:
    r = api.post("/v1/contracts", APPLY, Idempotency_Key="x" * 256)
    assert r.status_code == 422 and r.json()["field"] == "Idempotency-Key"
    assert api.event_count() == 0


def test_concurrent_duplicate_is_409(any_api: Harness) -> None:
    api = any_api
    cid = api.apply("C-104")
    entered, release = threading.Event(), threading.Event()
    real_approve = api.app.approve

    def slow_approve(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return real_approve(*args, **kwargs)

    api.app.approve = slow_approve
    results: dict[str, Any] = {}
    first = threading.Thread(target=lambda: results.setdefault(
        "first", api.post(f"/v1/contracts/{cid}/approve", Idempotency_Key="dup-1")))
    first.start()
    try:
        assert entered.wait(10)
        duplicate = api.post(f"/v1/contracts/{cid}/approve", Idempotency_Key="dup-1")
        assert duplicate.status_code == 409
        assert duplicate.json()["type"] == "urn:contracts:problem:idempotency-in-progress"
        assert duplicate.headers["retry-after"] == "1"
    finally:
        release.set()
        first.join(10)
        api.app.approve = real_approve
    assert results["first"].status_code == 200
    replay = api.post(f"/v1/contracts/{cid}/approve", Idempotency_Key="dup-1")
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert [e["type"] for e in api.get(f"/v1/contracts/{cid}/events").json()["events"]].count("Approved") == 1


def test_racing_identical_requests_store_one_event(api: Harness) -> None:
    cid = api.apply("C-105")
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def go() -> None:
        barrier.wait()
        statuses.append(api.post(f"/v1/contracts/{cid}/approve", Idempotency_Key="race-1").status_code)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}
    assert [e["type"] for e in api.get(f"/v1/contracts/{cid}/events").json()["events"]].count("Approved") == 1


def test_keys_expire_after_the_retention(api: Harness) -> None:
    assert api.post("/v1/contracts", APPLY, Idempotency_Key="old").status_code == 201
    later = datetime.now(UTC) + timedelta(hours=25)
    assert api.store.purge_idempotency(later - timedelta(hours=24)) == 1
    # A stale in-progress claim (its process died) is taken over by a retry of the same request.
    now = datetime.now(UTC)
    assert api.store.claim_idempotency("crashed", "p", "h", now - timedelta(minutes=5),
                                       stale_before=now, expired_before=now - timedelta(days=1)) is None
    assert api.store.claim_idempotency("crashed", "p", "h", now, stale_before=now - timedelta(minutes=2),
                                       expired_before=now - timedelta(days=1)) is None
    held = api.store.claim_idempotency("crashed", "p", "other", now, stale_before=now - timedelta(minutes=2),
                                       expired_before=now - timedelta(days=1))
    assert held is not None and held.status == "in_progress"


def test_requests_purge_keys_older_than_the_retention(api: Harness) -> None:
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    assert ctx.idempotency_retention == timedelta(hours=24)
    now = datetime.now(UTC)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    for key, age in (("two-days-old", timedelta(hours=48)), ("an-hour-old", timedelta(hours=1))):
        assert api.store.claim_idempotency(key, "p", "h", now - age, stale_before=epoch, expired_before=epoch) is None
    ctx.last_purge = None
    assert api.post("/v1/contracts", APPLY, Idempotency_Key="fresh").status_code == 201
    gone = api.store.claim_idempotency("two-days-old", "p", "other", now, stale_before=epoch, expired_before=epoch)
    kept = api.store.claim_idempotency("an-hour-old", "p", "other", now, stale_before=epoch, expired_before=epoch)
    assert gone is None and kept is not None


def test_a_key_reused_after_its_retention_is_never_answered_as_done(any_api: Harness) -> None:
    """Issue 14 item 2: once the key's record is purged (24 h), a different command with the
    same key is refused 422 (the receipt still remembers the key with the request it applied),
    not answered ``"recovered": true`` for work never done; the same request is answered from
    the receipt; a new key runs the command."""
    api = any_api
    first = api.post("/v1/contracts", APPLY, Idempotency_Key="day-old")
    assert first.status_code == 201
    cid = first.json()["contract_id"]
    # 25 hours later the key's record is purged ...
    assert api.store.purge_idempotency(datetime.now(UTC) + timedelta(hours=1)) >= 1
    events = api.event_count()
    other = {**APPLY, "customer_number": "C-200"}
    reused = api.post("/v1/contracts", other, Idempotency_Key="day-old")
    assert reused.status_code == 422, reused.text
    assert reused.json()["type"] == "urn:contracts:problem:idempotency-key-reused"
    assert reused.json()["field"] == "Idempotency-Key" and "recovered" not in reused.json()
    assert api.event_count() == events  # nothing applied, nothing claimed as done
    # ... and the refusal is not stored under the key: the original request is still recognised
    same = api.post("/v1/contracts", APPLY, Idempotency_Key="day-old")
    assert same.status_code == 200 and same.json()["recovered"] is True
    assert same.json()["aggregate_id"] == cid and same.headers["etag"] == first.headers["etag"]
    assert api.event_count() == events
    fresh = api.post("/v1/contracts", other, Idempotency_Key="next-day")
    assert fresh.status_code == 201 and fresh.json()["contract_id"] != cid
