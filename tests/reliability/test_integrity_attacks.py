"""Integrity attacks of issue 14 (items 2, 3, 5, 8), each reproduced against PostgreSQL as an
attacker with some access would try it; each failed on 957dcd3.

- item 2: an Idempotency-Key reused after its 24 h retention, with another command;
- item 3: one outage sent twice (``+09:00`` and ``Z``), to two API processes at the same moment;
- item 5: the event table rewritten from inside the database (edit with recomputed hashes,
  truncation, a deleted contract, two events' global order swapped), against a signed checkpoint;
- item 8: submitted values echoed in errors, the payer reference in clear in the store, shown to
  auditors and surviving erasure.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import httpx
import psycopg
import pytest
from psycopg import sql
from reliability_kit import Deployment, InProcessApi, apply_body, assert_problem, record_figures

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

JST = timezone(timedelta(hours=9))


# --------------------------------------------------------------------------- item 2


def test_idempotency_key_reused_after_its_retention_never_answers_done(scratch_url: str) -> None:
    """The key's record is 25 hours old (as a day later); the same key now carries another
    command. On 957dcd3 that answered 200 ``"recovered": true`` with the old contract and did not
    run the command. Now: 422 naming the header, nothing stored; the original request is still
    recognised; a fresh key runs the command."""
    api = InProcessApi.start(scratch_url, mode="production")
    try:
        c, h = api.client, api.headers
        first = c.post("/v1/contracts", json=apply_body("RETAIN-1"), headers=h(Idempotency_Key="reused-key"))
        assert first.status_code == 201, first.text
        with psycopg.connect(scratch_url, autocommit=True) as conn:  # a day passes
            aged = conn.execute(sql.SQL("UPDATE {} SET created_at = created_at - interval '25 hours'").format(
                sql.Identifier("public", "idempotency_keys"))).rowcount
        assert aged == 1
        before = api.events()
        other = c.post("/v1/contracts", json=apply_body("RETAIN-2"), headers=h(Idempotency_Key="reused-key"))
        body = assert_problem(other, 422)
        assert body["type"] == "urn:contracts:problem:idempotency-key-reused" and body["field"] == "Idempotency-Key"
        assert api.events() == before, "nothing may be stored for the refused request"
        same = c.post("/v1/contracts", json=apply_body("RETAIN-1"), headers=h(Idempotency_Key="reused-key"))
        assert same.status_code == 200 and same.json()["recovered"] is True
        assert same.json()["aggregate_id"] == first.json()["contract_id"]
        fresh = c.post("/v1/contracts", json=apply_body("RETAIN-2"), headers=h(Idempotency_Key="another-key"))
        assert fresh.status_code == 201 and api.events() > before
        record_figures("idempotency_after_retention", {"reused_after_retention": 1, "skipped_commands": 0})
    finally:
        api.close()


# --------------------------------------------------------------------------- item 3


def test_one_outage_sent_to_two_servers_at_once_is_recorded_and_credited_once(deployment: Deployment) -> None:
    """Two API processes on one database; each round sends one outage to both at the same moment,
    one spelled ``+09:00`` and one ``Z`` (or shifted by an hour: overlapping). On 957dcd3 both
    were stored (two outages, two claims, two credits). Now exactly one is 201 and the other is
    409 naming spec 8 and the stored outage; a contract can claim only once."""
    key = deployment.create_key("operator", "outage-racer")
    first, second = deployment.api("api-1"), deployment.api("api-2")
    first.start_ready()  # one at a time: two processes creating the tables at once collide (item 9)
    second.start_ready()
    a = httpx.Client(base_url=first.base, headers={"X-API-Key": key}, timeout=30)
    b = httpx.Client(base_url=second.base, headers={"X-API-Key": key}, timeout=30)
    assert a.put("/v1/clock", json={"now": "2026-03-02T10:00:00+09:00"}).status_code == 200
    cid = a.post("/v1/contracts", json=apply_body("OUTAGE-1")).json()["contract_id"]
    assert a.post(f"/v1/contracts/{cid}/approve").status_code == 200
    assert a.put("/v1/clock", json={"now": "2026-06-30T10:00:00+09:00"}).status_code == 200

    rounds, statuses = 12, []
    for n in range(rounds):
        began = datetime(2026, 4, 1, 0, 0, tzinfo=UTC) + timedelta(days=4 * n)
        tokyo = {"service": "kintone", "started_at": began.astimezone(JST).isoformat(),
                 "ended_at": (began + timedelta(hours=30)).astimezone(JST).isoformat(), "cause": "provider_network"}
        shift = timedelta(hours=n % 2)
        zulu = {**tokyo, "started_at": (began + shift).isoformat().replace("+00:00", "Z"),
                "ended_at": (began + shift + timedelta(hours=30)).isoformat().replace("+00:00", "Z")}
        barrier, answers = threading.Barrier(2), {}

        def send(name: str, client: httpx.Client, body: dict[str, str], barrier: threading.Barrier = barrier,
                 answers: dict[str, httpx.Response] = answers) -> None:
            barrier.wait()
            answers[name] = client.post("/v1/outages", json=body)

        threads = [threading.Thread(target=send, args=("a", a, tokyo)),
                   threading.Thread(target=send, args=("b", b, zulu))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        codes = sorted(r.status_code for r in answers.values())
        statuses.append(codes)
        assert codes == [201, 409], [(r.status_code, r.text[:300]) for r in answers.values()]
        won = next(r for r in answers.values() if r.status_code == 201).json()["outage_id"]
        refused = assert_problem(next(r for r in answers.values() if r.status_code == 409), 409)
        assert refused["article"] == "spec 8" and refused["existing_outage_id"] == won
    outages = [e for e in deployment.stored_events() if e[3] == "OutageRecorded"]
    assert len(outages) == rounds
    # the attack's goal: credit twice for the same hours. One outage, one claim.
    last = outages[0][1]
    claim = a.post(f"/v1/contracts/{cid}/sla-claims", json={"outage_id": last, "proof_of_payment": True,
                                                              "proof_of_breach": True})
    assert claim.status_code == 201, claim.text
    again = b.post(f"/v1/contracts/{cid}/sla-claims", json={"outage_id": last, "proof_of_payment": True,
                                                              "proof_of_breach": True})
    assert_problem(again, 409)
    logs = deployment.logs()
    assert "Exception in ASGI application" not in logs and "unhandled error" not in logs
    record_figures("outage_recorded_once", {"rounds": rounds, "servers": 2, "stored": len(outages),
                                            "refused_409": rounds, "double_credits": 0})
