"""``as_of`` (recorded time) and ``on`` (a business date) on the contract, its invoices and its
claims (issue 19, rule book 11). In sandbox mode every event is recorded within seconds of wall
time while its business dates are months apart: ``on`` answers what stood on a business date.

Hand-computed from the rule book and the sample catalog (kintone standard, 10 users): approved
2026-03-02, first month April (Art. 8.1); April's invoice: campaign 1,200 x 10 + initial fee
10,000 = 22,000, tax 10 % = 2,200, total 24,200, due 2026-05-31 (Art. 9.1, 9.2). Late interest
as of 2026-07-01, unpaid: 30 days (06-01 .. 06-30), floor(24,200 x 0.145 x 30 / 365) = 288
(Art. 9.4). An outage 2026-04-03 10:00 to 04-05 10:00 JST: 48 hours, 2 credit days; minimum
credit floor(12,000 x 2 / 30) = 800 (rule book 8: April's fee 1,200 x 10, 30 days)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from api_harness import Harness, iso, jst


def _april(api: Harness) -> str:
    cid = api.concluded("ON-1")  # 2026-03-02 10:00 JST
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)
    return cid


def test_on_reads_the_contract_and_its_invoices_as_they_stood_on_a_business_date(api: Harness) -> None:
    cid = _april(api)
    march = api.get(f"/v1/contracts/{cid}", "auditor", params={"on": "2026-03-15"})
    assert march.status_code == 200, march.text
    assert (march.json()["state"], march.json()["on"], march.headers["etag"]) == ("concluded", "2026-03-15", '"3"')
    april = api.get(f"/v1/contracts/{cid}", params={"on": "2026-04-01"}).json()
    assert (april["state"], april["period"]) == ("active", {"start": "2026-04", "end": "2026-04"})  # monthly: Art. 8
    assert api.get(f"/v1/contracts/{cid}/invoices", params={"on": "2026-03-15"}).json()["data"] == []
    api.set_clock(jst(2026, 7, 1))
    page = api.get(f"/v1/contracts/{cid}/invoices", params={"on": "2026-07-01"}).json()
    (invoice,) = page["data"]
    assert page["on"] == "2026-07-01" and page["invoices"] == page["data"]
    assert (invoice["object"], invoice["month"], invoice["total"], invoice["due_on"], invoice["outstanding"]) == (
        "invoice", "2026-04", 24_200, "2026-05-31", 24_200)
    assert (invoice["late_interest"], invoice["interest_as_of"]) == (288, "2026-07-01")
    # the same invoice from the read side (today = 2026-07-01) agrees
    current = api.get(f"/v1/contracts/{cid}/invoices").json()["data"][0]
    assert {k: current[k] for k in ("id", "total", "late_interest")} == {
        "id": invoice["id"], "total": 24_200, "late_interest": 288}


def test_on_before_the_contract_is_404_and_both_at_once_422(api: Harness) -> None:
    cid = api.concluded("ON-2")
    for path in (f"/v1/contracts/{cid}", f"/v1/contracts/{cid}/invoices", f"/v1/contracts/{cid}/sla-claims"):
        before = api.get(path, params={"on": "2026-03-01"})
        assert before.status_code == 404 and before.json()["field"] == "on", (path, before.text)
        both = api.get(path, params={"on": "2026-03-02", "as_of": iso(datetime.now(UTC))})
        assert both.status_code == 422 and both.json()["field"] == "on", (path, both.text)
        assert api.get(path, params={"on": "2026-02-30"}).status_code == 422


def test_claims_as_of_a_recorded_instant_and_on_a_business_date(api: Harness) -> None:
    cid = _april(api)
    api.set_clock(jst(2026, 4, 7))
    outage = api.post("/v1/outages", {"service": "kintone", "started_at": iso(jst(2026, 4, 3)),
                                      "ended_at": iso(jst(2026, 4, 5)), "cause": "provider_network"}).json()
    claim = api.post(f"/v1/contracts/{cid}/sla-claims", {"outage_id": outage["outage_id"], "proof_of_payment": True,
                                                         "proof_of_breach": True}).json()
    time.sleep(0.01)
    between = datetime.now(UTC)  # recorded after the claim, before the decision
    time.sleep(0.01)
    api.set_clock(jst(2026, 4, 8))
    assert api.post(f"/v1/sla-claims/{claim['claim_id']}/decision", {}, "operator").status_code == 200

    def claims(**params: str) -> list[dict[str, object]]:
        answer = api.get(f"/v1/contracts/{cid}/sla-claims", "auditor", params=params)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"])

    assert claims(on="2026-04-06") == []
    (pending,) = claims(on="2026-04-07")
    assert (pending["id"], pending["status"], pending["decided_at"], pending["claimed_at"]) == (
        claim["claim_id"], "pending", None, "2026-04-07T01:00:00Z")
    assert (pending["eligible"], pending["credit_days"], pending["minimum"], pending["breach_date"]) == (
        True, 2, 800, "2026-04-04")
    (granted,) = claims(on="2026-04-08")
    assert (granted["status"], granted["remedy"], granted["amount"], granted["decided_at"]) == (
        "granted", "fee_reduction", 800, "2026-04-08T01:00:00Z")
    (recorded,) = claims(as_of=iso(between))
    assert recorded["status"] == "pending" and recorded["decided_at"] is None
    # the fold and the read side answer the same document for the current state
    (current,) = claims()
    assert current == granted
