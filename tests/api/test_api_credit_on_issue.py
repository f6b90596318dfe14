"""Rule book 7 over HTTP with the scheduler (SQLite and PostgreSQL): an overpayment's credit
balance is applied by the month start sweep to the invoice it issues, with no operator call.

Worked by hand: garoon standard x 22 users = 22,000 + 10 % tax 2,200 = 24,200 yen a month; approved
before April (first month April 2026). April paid with 29,200 -> 5,000 credit. The 2026-05-01 sweep
issues May's 24,200 and applies the 5,000: 19,200 outstanding, credit balance 0.
"""

from __future__ import annotations

from datetime import date

from api_harness import Harness, jst

from application.sweep import Sweeper
from infrastructure.clock_store import DatabaseClock


def _sweep_on(api: Harness, day: date) -> None:
    api.set_clock(jst(day.year, day.month, day.day, 6))
    report = Sweeper(api.app, api.read_models, DatabaseClock(api.store)).run()
    assert report.complete and not report.failures, report.failures


def test_rule_book_7_month_start_sweep_applies_credit_balance_over_http(any_api: Harness) -> None:
    api = any_api
    cid = api.concluded("C-CR7", service="garoon", users=22)  # standard, monthly
    _sweep_on(api, date(2026, 4, 1))
    assert [i["total"] for i in api.invoices(cid)] == [24_200]

    api.set_clock(jst(2026, 4, 20))
    r = api.post("/v1/transfers", {"customer_number": "C-CR7", "payer_name": "ｻﾝﾌﾟﾙ", "bank_reference": "B-CR7",
                                   "amount": 29_200, "value_date": "2026-04-20"})
    assert r.status_code == 201 and r.json()["credit"] == 5_000, r.text  # 29,200 - 24,200

    _sweep_on(api, date(2026, 5, 1))
    assert [(i["total"], i["outstanding"]) for i in api.invoices(cid)] == [(24_200, 0), (24_200, 19_200)]
    assert api.get("/v1/customers/C-CR7/account").json()["credit_balance"] == 0
    events = api.get(f"/v1/contracts/{cid}/events", "auditor").json()["events"]
    paid = [e for e in events if e["type"] == "PaymentReceived"][-1]
    assert paid["actor"]["kind"] == "scheduler" and paid["actor"]["deadline"] == "month_start 2026-05-01"

    _sweep_on(api, date(2026, 5, 1))  # again: nothing applied twice
    assert [i["outstanding"] for i in api.invoices(cid)] == [0, 19_200]
    again = api.post("/v1/customers/C-CR7/credit/apply", role="operator")
    assert again.status_code == 409, again.text  # no credit balance left


def test_rule_book_7_an_operator_advance_applies_credit_balance_like_the_scheduler(any_api: Harness) -> None:
    """Rule book 7 on the HTTP command path (sandbox ``/advance``, no sweep): April 24,200 paid with
    29,200 -> 5,000 credit; the operator's advance to May (clock 05-03) issues 24,200 and applies the
    5,000 at once: 19,200 outstanding, credit 0, the payment dated 05-03 and recorded as the operator's
    key; the answer's version is the contract after the credit step (its ETag stays usable)."""
    api = any_api
    cid = api.concluded("C-CR7H", service="garoon", users=22)
    api.set_clock(jst(2026, 4, 2))
    api.advance(cid, "2026-04")
    api.set_clock(jst(2026, 4, 20))
    r = api.post("/v1/transfers", {"customer_number": "C-CR7H", "payer_name": "ｻﾝﾌﾟﾙ", "bank_reference": "B-CR7H",
                                   "amount": 29_200, "value_date": "2026-04-20"})
    assert r.status_code == 201 and r.json()["credit"] == 5_000, r.text

    api.set_clock(jst(2026, 5, 3))
    answer = api.advance(cid, "2026-05")
    assert [(i["total"], i["outstanding"]) for i in api.invoices(cid)] == [(24_200, 0), (24_200, 19_200)]
    assert api.get("/v1/customers/C-CR7H/account").json()["credit_balance"] == 0
    events = api.get(f"/v1/contracts/{cid}/events", "auditor").json()["events"]
    paid = [e for e in events if e["type"] == "PaymentReceived"][-1]
    assert paid["data"]["paid_on"] == "2026-05-03" and paid["actor"]["kind"] == "api_key", paid
    assert paid["actor"]["role"] == "operator"
    assert answer["version"] == len(events)
    assert api.advance(cid, "2026-05")["events"] == 0  # idempotent: nothing applied twice
    assert [i["outstanding"] for i in api.invoices(cid)] == [0, 19_200]
