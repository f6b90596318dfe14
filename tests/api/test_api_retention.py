"""Rule book 10 retention through HTTP and the scheduler on the sandbox clock (issue 15), SQLite and
PostgreSQL.

Worked by hand (rule book sections 3, 10, 11): monthly kintone standard x 10, approved 2026-03-24
(first month April), termination noticed 2026-05-01 for June: ended 2026-06-30; invoices 2026-04
(24,200), 2026-05 and 2026-06 (13,200 each, issued on the 1st of their month).
- Art. 15.3: stored data deleted 2026-06-30 + 60 days = 2026-08-29.
- Art. 13 + Corporate Tax Act: last invoice 2026-06-01, fiscal year ends 2027-03-31, return filed by
  2027-05-31, + 7 years from the next day: contractor data kept until 2034-05-31, erased 2034-06-01;
  June unpaid: not erased until settled.
- Privacy policy 7: an erasure request erases the contacts at once, keeps name and address until
  2034-05-31 and says why (Consumption Tax Act Art. 57-4(1)(6): the recipient on a qualified invoice).
- Art. 9.4, rule book 6 (issue 16): late interest is billed once the principal is paid, at once on an
  interest invoice as the contract has ended: April (24,200, due 05-31) paid 07-01: 30 days ->
  floor(24200 x 0.145 x 30 / 365) = 288; June (13,200, due 2026-07-31) paid 2034-06-10: 2,870 days
  -> floor(13200 x 0.145 x 2870 / 365) = 15,049, on an interest invoice issued 2034-06-10: the last
  document now, in the fiscal year ending 2035-03-31 (filed by 2035-05-31), + 7 years: kept until
  2042-05-31, erased 2042-06-01.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from api_harness import CONTRACTOR, Harness, jst

from application.sweep import Sweeper
from infrastructure.clock_store import DatabaseClock


def _deadlines(api: Harness, cid: str) -> list[tuple[str, str]]:
    r = api.get("/v1/deadlines", "operator", params={"until": "2050-12-31", "limit": 1000})
    assert r.status_code == 200, r.text
    return [(d["due_on"], d["kind"]) for d in r.json()["deadlines"]
            if d["aggregate_id"] == cid and d["kind"] in ("stored_data_deletion", "contractor_data_erasure")]


def _pay(api: Harness, cid: str, invoice: dict[str, Any], paid_on: str) -> None:
    r = api.post(f"/v1/contracts/{cid}/payments", {"invoice_id": invoice["invoice_id"],
                                                   "amount": invoice["outstanding"], "paid_on": paid_on})
    assert r.status_code == 200, r.text


def _sweep_on(api: Harness, day: date) -> None:
    api.set_clock(jst(day.year, day.month, day.day, 6))
    sweeper = Sweeper(api.app, api.read_models, DatabaseClock(api.store))
    report = sweeper.run()
    assert not report.failures, report.failures


def test_spec_10_retention_over_http_and_the_scheduler(any_api: Harness) -> None:
    api = any_api
    cid = api.concluded("C-RET-HTTP")
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)
    api.set_clock(jst(2026, 5, 1, 9))
    api.advance(cid)
    r = api.post(f"/v1/contracts/{cid}/termination-notice", {"requested_month": "2026-06"})
    assert r.status_code == 200, r.text
    api.set_clock(jst(2026, 6, 1, 9))
    api.advance(cid)
    api.set_clock(jst(2026, 7, 1, 9))
    api.advance(cid)
    view = api.get(f"/v1/contracts/{cid}", "operator").json()
    assert (view["state"], view["ended_on"], view["retention_until"]) == ("terminated", "2026-06-30", "2026-08-29")
    invoices = {i["period"]: i for i in api.invoices(cid)}
    assert [invoices[p]["total"] for p in ("2026-04", "2026-05", "2026-06")] == [24200, 13200, 13200]
    _pay(api, cid, invoices["2026-04"], "2026-07-01")
    _pay(api, cid, invoices["2026-05"], "2026-07-01")
    april_interest = [i for i in api.invoices(cid) if i["kind"] == "interest"]
    assert [(i["total"], i["issued_on"]) for i in april_interest] == [(288, "2026-07-01")]
    _pay(api, cid, april_interest[0], "2026-07-01")
    # June (13,200 yen) is owed: only the stored-data deadline (Art. 15.3)
    assert _deadlines(api, cid) == [("2026-08-29", "stored_data_deletion")]
    assert view["retention"]["stored_data"]["deletion_on"] == "2026-08-29"

    # privacy policy 7: an operator acts on an erasure request
    assert api.post(f"/v1/contracts/{cid}/privacy-requests", {"request": "erase"}).status_code == 403  # billing
    bad = api.post(f"/v1/contracts/{cid}/privacy-requests", {"request": "forget"}, role="operator")
    assert bad.status_code == 422 and bad.json()["field"] in ("request", "body.request")
    api.set_clock(jst(2026, 7, 2, 9))
    answer = api.post(f"/v1/contracts/{cid}/privacy-requests", {"request": "erase"}, role="operator").json()
    assert answer["erased_fields"] == ["contact_email", "contact_name"]
    assert answer["kept_fields"] == ["address", "name"] and answer["kept_until"] is None  # June still owed
    assert "Corporate Tax Act" in answer["kept_because"] and "13200 yen" in answer["kept_because"]
    contractor = api.get(f"/v1/contracts/{cid}", "operator").json()["contractor"]
    erased = {"object": "redacted", "redacted": True, "reason": "erased"}  # one typed representation
    assert contractor == {"name": CONTRACTOR["name"], "address": CONTRACTOR["address"], "contacts": erased}
    history = api.get(f"/v1/contracts/{cid}/events", "operator").text
    assert CONTRACTOR["contact_email"] not in history and CONTRACTOR["contact_name"] not in history

    # the scheduler on the sandbox clock: stored data on 2026-08-29, not the day before
    _sweep_on(api, date(2026, 8, 28))
    assert api.get(f"/v1/contracts/{cid}", "operator").json()["retention"]["stored_data"]["deleted_on"] is None
    _sweep_on(api, date(2026, 8, 29))
    view = api.get(f"/v1/contracts/{cid}", "operator").json()
    assert view["retention"]["stored_data"]["deleted_on"] == "2026-08-29" and view["contractor"]["name"]
    # 2034-06-01: the records period has ended, but June is still owed: nothing is erased
    _sweep_on(api, date(2034, 6, 1))
    assert api.get(f"/v1/contracts/{cid}", "operator").json()["data_deleted"] is False
    api.set_clock(jst(2034, 6, 10, 12))
    _pay(api, cid, invoices["2026-06"], "2034-06-10")
    june_interest = [i for i in api.invoices(cid) if i["kind"] == "interest" and i["issued_on"] == "2034-06-10"]
    assert [i["total"] for i in june_interest] == [15049]
    assert _deadlines(api, cid) == []  # the interest is owed now
    _pay(api, cid, june_interest[0], "2034-06-10")
    assert _deadlines(api, cid) == [("2042-06-01", "contractor_data_erasure")]  # the interest invoice's records
    _sweep_on(api, date(2042, 5, 31))
    assert api.get(f"/v1/contracts/{cid}", "operator").json()["data_deleted"] is False
    _sweep_on(api, date(2042, 6, 1))
    view = api.get(f"/v1/contracts/{cid}", "operator").json()
    assert view["data_deleted"] is True and view["contractor"] == erased
    assert api.get(f"/v1/contracts/{cid}", "auditor").json()["contractor"] == erased  # erased wins over role
    assert view["retention"]["contractor_data"]["erased_on"] == "2042-06-01"
    totals = [(i["kind"], i["total"]) for i in api.invoices(cid)]  # every amount replays
    assert sorted(totals) == [("interest", 288), ("interest", 15049), ("monthly", 13200), ("monthly", 13200),
                              ("monthly", 24200)]
    events = api.get(f"/v1/contracts/{cid}/events", "operator").json()
    names = [e["type"] for e in events["events"]]
    assert names[-5:] == ["StoredDataDeleted", "PaymentReceived", "InvoiceIssued", "PaymentReceived",
                          "ContractorDataErased"]
    assert CONTRACTOR["name"] not in api.get(f"/v1/contracts/{cid}/events", "operator").text
    # erased data reads one way in every view (the contract above, events, invoices; rule book 10)
    for role in ("operator", "auditor"):
        listed = api.get(f"/v1/contracts/{cid}/events", role, params={"limit": 500}).json()["data"]
        (applied,) = [e for e in listed if e["type"] == "Applied"]
        assert applied["data"]["contractor"] == erased, role
        issued = [e["data"]["recipient"] for e in listed if e["type"] == "InvoiceIssued"]
        assert issued and all(r == erased for r in issued), role
        first = api.get(f"/v1/invoices/{invoices['2026-04']['invoice_id']}", role).json()
        assert first["recipient"] == erased and first["total"] == 24200, role
    assert _deadlines(api, cid) == []
