"""Rule book 7 payment reminders through HTTP and the scheduler on the sandbox clock (SQLite and
PostgreSQL).

Worked by hand: monthly kintone standard x 10, approved 2026-03-24 (first month April); April's
invoice 24,200 yen (campaign 12,000 + initial fee 10,000 + 10 % tax), issued 2026-04-01, due
2026-05-31. POLICY payment_reminder_days_before = 7 and _after = 7: reminders on 2026-05-24 and
2026-06-07; a partial payment of 20,000 on 2026-05-20 leaves 4,200 unpaid in both.
"""

from __future__ import annotations

from datetime import date

from api_harness import Harness, jst

from application.sweep import Sweeper
from infrastructure.clock_store import DatabaseClock


def _reminders(api: Harness, cid: str, invoice_id: str) -> list[tuple[str, str]]:
    r = api.get("/v1/deadlines", "operator", params={"until": "2026-12-31", "limit": 1000})
    assert r.status_code == 200, r.text
    return [(d["due_on"], d["kind"]) for d in r.json()["deadlines"]
            if d["aggregate_id"] == cid and d["kind"] in ("payment_reminder", "overdue_reminder")
            and d["ref"] == invoice_id]


def _sweep_on(api: Harness, day: date) -> None:
    api.set_clock(jst(day.year, day.month, day.day, 6))
    report = Sweeper(api.app, api.read_models, DatabaseClock(api.store)).run()
    assert not report.failures, report.failures


def _events(api: Harness, cid: str) -> list[dict[str, object]]:
    r = api.get(f"/v1/contracts/{cid}/events", "auditor")
    assert r.status_code == 200, r.text
    return [e for e in r.json()["events"] if e["type"] == "PaymentReminded"]


def test_rule_7_reminders_before_and_after_the_due_date_over_http(any_api: Harness) -> None:
    api = any_api
    cid = api.concluded("C-REMIND")
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)
    april = api.invoices(cid)[0]
    assert (april["total"], april["due_on"]) == (24_200, "2026-05-31")
    api.set_clock(jst(2026, 5, 20))
    r = api.post(f"/v1/contracts/{cid}/payments", {"invoice_id": april["invoice_id"], "amount": 20_000,
                                                   "paid_on": "2026-05-20"})
    assert r.status_code == 200, r.text
    assert _reminders(api, cid, april["invoice_id"]) == [("2026-05-24", "payment_reminder"),
                                                         ("2026-06-07", "overdue_reminder")]

    _sweep_on(api, date(2026, 5, 24))  # also renews for May (its invoice, due 06-30: reminded 06-23 and 07-07)
    [before] = _events(api, cid)
    assert before["data"]["stage"] == "before_due" and before["data"]["unpaid"] == 4_200  # 24,200 - 20,000
    assert before["data"]["reminded_on"] == "2026-05-24"
    assert before["actor"]["kind"] == "scheduler" and "payment_reminder" in before["actor"]["deadline"]
    assert _reminders(api, cid, april["invoice_id"]) == [("2026-06-07", "overdue_reminder")]

    _sweep_on(api, date(2026, 6, 8))  # a day late: the reminder keeps its own date
    after = _events(api, cid)[1]
    assert (after["data"]["stage"], after["data"]["unpaid"], after["data"]["reminded_on"]) == (
        "after_due", 4_200, "2026-06-07")
    assert _reminders(api, cid, april["invoice_id"]) == []
    _sweep_on(api, date(2026, 6, 9))
    assert [e["data"]["invoice_id"] for e in _events(api, cid)] == [april["invoice_id"]] * 2  # once each
