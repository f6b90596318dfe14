"""Each operation over HTTP. ``any_api`` tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from api_harness import CONTRACTOR, Harness, iso, jst

PROBLEM = "application/problem+json"


def test_apply_approve_read_and_follow_the_feed(any_api: Harness) -> None:
    api = any_api
    r = api.post("/v1/contracts", {"customer_number": "C-1", "service": "kintone", "grade": "standard", "users": 10,
                                   "contractor": CONTRACTOR, "billing_cycle": "monthly"})
    assert r.status_code == 201, r.text
    cid = r.json()["contract_id"]
    assert r.headers["location"] == f"/v1/contracts/{cid}"
    assert r.headers["etag"] == '"2"' and r.json()["version"] == 2 and r.json()["events"] == 2

    got = api.get(f"/v1/contracts/{cid}")
    assert got.status_code == 200 and got.headers["etag"] == '"2"'
    assert got.json()["state"] == "applied" and got.json()["billing_cycle"] == "monthly"

    r = api.post(f"/v1/contracts/{cid}/approve")
    assert r.status_code == 200, r.text
    assert r.json()["concluded_on"] == "2026-03-02" and r.json()["first_month"] == "2026-04"  # Art. 8.1
    body = api.get(f"/v1/contracts/{cid}").json()
    assert body["state"] == "concluded" and body["first_month"] == "2026-04" and body["version"] == 3

    events = api.get(f"/v1/contracts/{cid}/events", "auditor").json()["events"]
    assert [e["type"] for e in events] == ["Opened", "Applied", "Approved"]

    feed = api.get("/v1/events", "auditor", params={"after": 0, "limit": 2}).json()
    assert [e["position"] for e in feed["events"]] == [1, 2] and feed["has_more"] is True
    rest = api.get("/v1/events", "auditor", params={"after": feed["next_after"]}).json()
    # the customer's account (rule book 7) registers the contract in the same transaction
    assert [(e["aggregate_type"], e["type"]) for e in rest["events"]] == [
        ("CustomerAccount", "Opened"), ("CustomerAccount", "ContractRegistered"), ("Contract", "Approved")]
    assert rest["next_after"] == 5
    assert api.get("/v1/events", params={"after": 5}).json() == {
        "object": "list", "url": "/v1/events", "data": [], "has_more": False, "next_cursor": None,
        "events": [], "next_after": 5}


def test_trial_then_paid_application(any_api: Harness) -> None:
    api = any_api
    cid = api.apply("C-2", trial=True, cycle=None)
    body = api.get(f"/v1/contracts/{cid}").json()
    assert body["state"] == "trial" and body["trial"] == {"started_on": "2026-03-02", "ends_on": "2026-04-01"}
    r = api.post(f"/v1/contracts/{cid}/application", {"grade": "premium", "users": 12, "billing_cycle": "annual"})
    assert r.status_code == 200, r.text
    body = api.get(f"/v1/contracts/{cid}").json()
    assert (body["state"], body["grade"], body["users"], body["billing_cycle"]) == ("applied", "premium", 12, "annual")


def test_reject_names_an_article(api: Harness) -> None:
    cid = api.apply("C-3")
    bad = api.post(f"/v1/contracts/{cid}/reject", {"article": "Art. 99"})
    assert bad.status_code == 422 and bad.json()["field"] == "article"
    r = api.post(f"/v1/contracts/{cid}/reject", {"article": "Art. 2.4.1"})
    assert r.status_code == 200, r.text
    body = api.get(f"/v1/contracts/{cid}").json()
    assert body["state"] == "rejected" and body["termination_article"] == "Art. 2.4.1"
    again = api.post(f"/v1/contracts/{cid}/approve")
    assert again.status_code == 409 and again.json()["article"] == "Art. 2.3"


def test_changes_answer_requested_and_effective_month(any_api: Harness) -> None:
    api = any_api
    cid = api.concluded("C-4")
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)
    api.set_clock(jst(2026, 4, 22, 18))  # April's notice deadline is 2026-04-22 (Apr 29 is a holiday)
    r = api.post(f"/v1/contracts/{cid}/changes", {"users": 12})
    assert r.status_code == 200, r.text
    assert (r.json()["requested_month"], r.json()["effective_month"]) == (None, "2026-05")
    api.set_clock(jst(2026, 4, 23, 9))
    r = api.post(f"/v1/contracts/{cid}/changes", {"grade": "premium", "requested_month": "2026-05"})
    assert r.status_code == 200, r.text
    assert (r.json()["requested_month"], r.json()["effective_month"]) == ("2026-05", "2026-06")  # Art. 10.2
    assert r.json()["grade"] == "premium" and r.json()["users"] == 12
    r = api.post(f"/v1/contracts/{cid}/changes", {"users": 20, "requested_month": "2026-09"})
    assert r.json()["effective_month"] == "2026-09"
    pending = api.get(f"/v1/contracts/{cid}").json()["pending_changes"]
    assert [(c["effective_month"], c["grade"], c["users"]) for c in pending] == [
        ("2026-05", "standard", 12), ("2026-06", "premium", 12), ("2026-09", "premium", 20)]
    empty = api.post(f"/v1/contracts/{cid}/changes", {})
    assert empty.status_code == 422 and empty.json()["article"] == "Art. 10.1"
    below_minimum = api.post(f"/v1/contracts/{cid}/changes", {"grade": "premium", "users": 9})
    assert below_minimum.status_code == 422 and below_minimum.json()["article"] == "Art. 10.1"  # section 3
    assert below_minimum.json()["field"] == "users"


def test_annual_downgrade_is_refused_with_its_article(api: Harness) -> None:
    cid = api.concluded("C-5", grade="premium", cycle="annual")
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)
    r = api.post(f"/v1/contracts/{cid}/changes", {"grade": "standard"})
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert r.json()["article"] == "Art. 10.1.2" and "downgrade" in r.json()["detail"]


def test_termination_notice_after_the_deadline_moves_two_months(any_api: Harness) -> None:
    api = any_api
    cid = api.concluded("C-6")
    api.set_clock(jst(2026, 12, 24, 10))  # December's deadline is 12-22 (year-end break): -> February
    api.advance(cid)
    r = api.post(f"/v1/contracts/{cid}/termination-notice", {})
    assert r.status_code == 200, r.text
    assert (r.json()["requested_month"], r.json()["effective_month"]) == (None, "2027-02")
    assert api.get(f"/v1/contracts/{cid}").json()["termination_month"] == "2027-02"
    twice = api.post(f"/v1/contracts/{cid}/termination-notice", {"requested_month": "2027-06"})
    assert twice.status_code == 409 and twice.json()["article"] == "Art. 10.1"


def test_termination_for_cause_by_operator(api: Harness) -> None:
    cid = api.concluded("C-7")
    assert api.post(f"/v1/contracts/{cid}/terminate", {"article": "Art. 23.1.4"}).status_code == 403
    r = api.post(f"/v1/contracts/{cid}/terminate", {"article": "Art. 23.1.4"}, role="operator")
    assert r.status_code == 200, r.text
    body = api.get(f"/v1/contracts/{cid}").json()
    assert (body["state"], body["termination_reason"], body["termination_article"]) == (
        "terminated", "for_cause", "Art. 23.1.4")
    assert body["ended_on"] == "2026-03-02" and body["retention_until"] == "2026-05-01"  # 60 days (Art. 15.3)


def test_payments_and_read_your_writes(any_api: Harness) -> None:
    api = any_api
    cid = api.concluded("C-8")
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)
    [invoice] = api.invoices(cid)
    assert invoice["total"] == 24200 and invoice["due_on"] == "2026-05-31"
    api.set_clock(jst(2026, 4, 10, 12))
    partial = api.post(f"/v1/contracts/{cid}/payments",
                       {"invoice_id": invoice["invoice_id"], "amount": 20000, "paid_on": "2026-04-10"})
    assert partial.status_code == 200 and partial.json()["outstanding"] == 4200
    [after] = api.invoices(cid)  # the GET right after the POST sees the payment
    assert (after["paid"], after["outstanding"]) == (20000, 4200)
    over = api.post(f"/v1/contracts/{cid}/payments",
                    {"invoice_id": invoice["invoice_id"], "amount": 5000, "paid_on": "2026-04-10"})
    assert over.status_code == 409 and over.json()["article"] == "Art. 9.5"
    future = api.post(f"/v1/contracts/{cid}/payments",
                      {"invoice_id": invoice["invoice_id"], "amount": 100, "paid_on": "2026-04-11"})
    assert future.status_code == 422 and future.json()["article"] == "Art. 9.3" and future.json()["field"] == "paid_on"
    month = api.get("/v1/invoices", "auditor", params={"month": "2026-04"}).json()
    assert [i["invoice_id"] for i in month["invoices"]] == [invoice["invoice_id"]]


def test_outage_claim_and_decision(any_api: Harness) -> None:
    api = any_api
    cid = api.concluded("C-9")
    api.set_clock(jst(2026, 6, 12, 12))
    api.advance(cid)
    outage = api.post("/v1/outages", {"service": "kintone", "started_at": iso(jst(2026, 6, 10, 9)),
                                      "ended_at": iso(jst(2026, 6, 12, 11)), "cause": "provider_network"})
    assert outage.status_code == 201, outage.text
    assert outage.json()["breaches"] is True and outage.json()["breach_date"] == "2026-06-11"
    assert outage.json()["credit_days"] == 2
    oid = outage.json()["outage_id"]
    dup = api.post("/v1/outages", {"service": "kintone", "started_at": iso(jst(2026, 6, 10, 9)),
                                   "ended_at": iso(jst(2026, 6, 12, 11)), "cause": "provider_network"})
    assert dup.status_code == 409 and dup.json()["article"] == "Art. 20"

    api.set_clock(jst(2026, 6, 20, 10))
    claim = api.post(f"/v1/contracts/{cid}/sla-claims", {"outage_id": oid, "proof_of_payment": True,
                                                         "proof_of_breach": True, "evidence": "ticket #1"})
    assert claim.status_code == 201, claim.text
    assessment = claim.json()["assessment"]
    # June fee 1,200 x 10 users (campaign month 3): min floor(12000 x 2 / 30) = 800, max 12000 (Art. 20.1)
    assert (assessment["eligible"], assessment["credit_days"], assessment["minimum"], assessment["maximum"]) == (
        True, 2, 800, 12000)
    claim_id = claim.json()["claim_id"]

    too_much = api.post(f"/v1/sla-claims/{claim_id}/decision", {"remedy": "refund", "amount": 12001},
                        role="operator")
    assert too_much.status_code == 422 and too_much.json()["article"] == "Art. 20.1"
    assert too_much.json()["field"] == "amount"
    decided = api.post(f"/v1/sla-claims/{claim_id}/decision", {"remedy": "fee_reduction", "amount": 1000},
                       role="operator")
    assert decided.status_code == 200, decided.text
    assert (decided.json()["decision"], decided.json()["remedy"], decided.json()["amount"]) == (
        "granted", "fee_reduction", 1000)
    again = api.post(f"/v1/sla-claims/{claim_id}/decision", {}, role="operator")
    assert again.status_code == 409 and again.json()["article"] == "Art. 20.1"
    claims = api.get(f"/v1/contracts/{cid}/sla-claims", "auditor").json()["claims"]
    assert len(claims) == 1 and str(claims[0]["claim_id"]) == claim_id
    unknown = api.post("/v1/sla-claims/00000000-0000-0000-0000-000000000000/decision", {}, role="operator")
    assert unknown.status_code == 404


def test_ineligible_claim_is_rejected_with_its_reason(api: Harness) -> None:
    cid = api.concluded("C-10")
    api.set_clock(jst(2026, 5, 3, 12))
    api.advance(cid)
    oid = api.post("/v1/outages", {"service": "kintone", "started_at": iso(jst(2026, 5, 1, 0)),
                                   "ended_at": iso(jst(2026, 5, 3, 0)), "cause": "scheduled_maintenance"}
                   ).json()["outage_id"]
    claim = api.post(f"/v1/contracts/{cid}/sla-claims", {"outage_id": oid, "proof_of_payment": True,
                                                         "proof_of_breach": True})
    assert claim.json()["assessment"]["eligible"] is False
    assert claim.json()["assessment"]["reason"].startswith("Art. 20.2")
    refused = api.post(f"/v1/sla-claims/{claim.json()['claim_id']}/decision", {"remedy": "refund", "amount": 1},
                       role="operator")
    assert refused.status_code == 409 and refused.json()["article"].startswith("Art. 20.2")
    rejected = api.post(f"/v1/sla-claims/{claim.json()['claim_id']}/decision", {}, role="operator")
    assert rejected.json()["decision"] == "rejected"


def test_contract_as_of_an_earlier_instant(any_api: Harness) -> None:
    api = any_api
    cid = api.apply("C-11")
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    api.post(f"/v1/contracts/{cid}/approve")
    then = api.get(f"/v1/contracts/{cid}", params={"as_of": iso(between)})
    assert then.status_code == 200 and then.json()["state"] == "applied" and then.headers["etag"] == '"2"'
    assert then.json()["as_of"] is not None
    assert api.get(f"/v1/contracts/{cid}").json()["state"] == "concluded"
    before = api.get(f"/v1/contracts/{cid}", params={"as_of": "2000-01-01T00:00:00Z"})
    assert before.status_code == 404 and before.json()["field"] == "as_of"
    naive = api.get(f"/v1/contracts/{cid}", params={"as_of": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["field"] == "as_of"
    invoices = api.get(f"/v1/contracts/{cid}/invoices", params={"as_of": iso(between)})
    assert invoices.status_code == 200 and invoices.json()["invoices"] == []


def test_deadlines_listing(api: Harness) -> None:
    r = api.get("/v1/deadlines", "auditor", params={"until": "2026-12-31", "limit": 10})
    assert r.status_code == 200 and isinstance(r.json()["deadlines"], list) and r.json()["object"] == "list"
    bad = api.get("/v1/deadlines", "auditor", params={"until": "2026-13-01"})
    assert bad.status_code == 422 and bad.json()["field"] == "until"


def test_auditor_sees_no_personal_data_billing_and_operator_do(api: Harness) -> None:
    cid = api.apply("C-12")
    role = {"object": "redacted", "redacted": True, "reason": "role"}  # rule book 10: one typed representation
    assert api.get(f"/v1/contracts/{cid}", "auditor").json()["contractor"] == role
    assert api.get(f"/v1/contracts/{cid}", "billing").json()["contractor"]["name"] == CONTRACTOR["name"]
    applied = [e for e in api.get("/v1/events", "auditor").json()["events"] if e["type"] == "Applied"][0]
    assert applied["data"]["contractor"] == role and applied["data"]["users"] == 10
    own = api.get(f"/v1/contracts/{cid}/events", "auditor").json()["events"]
    assert CONTRACTOR["name"] not in str(own)
    disclosure = api.get(f"/v1/contracts/{cid}/disclosure", "operator")
    assert disclosure.status_code == 200 and CONTRACTOR["name"] in disclosure.text
    assert disclosure.headers["cache-control"] == "no-store"


def test_contractor_change(api: Harness) -> None:
    cid = api.concluded("C-13")
    r = api.post(f"/v1/contracts/{cid}/contractor", {"contractor": {"name": "New Name K.K."}})
    assert r.status_code == 200, r.text
    assert api.get(f"/v1/contracts/{cid}").json()["contractor"] == {"name": "New Name K.K."}
