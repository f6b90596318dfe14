"""A scripted billing client walks a monthly and an annual contract through a year in sandbox
mode, over HTTP only: PUT /v1/clock moves business time, POST /v1/contracts/{id}/advance
(operator) runs the month starts the scheduler would run, and the invoices of spec section 6
come out with hand-computed amounts.

Sample catalog (infrastructure/catalog/sample.toml), kintone:
  light    800/month, 9,000/year per user, no initial fee
  standard 1,500/month, 18,000/year, initial fee 10,000, campaign 1,200/month for 3 months
  premium  2,500/month, 30,000/year
Tax 10 % once per invoice, rounded down; due on the last day of the next month (spec 6).
"""

from __future__ import annotations

from typing import Any

from api_harness import CONTRACTOR, Harness, iso, jst

from domain.calendar import Month


def lines(invoice: dict[str, Any]) -> list[tuple[str, int]]:
    return [(line["kind"], line["amount"]) for line in invoice["lines"]]


def summary(invoices: list[dict[str, Any]]) -> list[tuple[str, str, int, str]]:
    ordered = sorted(invoices, key=lambda i: (i["issued_on"], i["kind"]))
    # an upgrade invoice's period is its change id; its month is the effective month
    return [(i["kind"], i["month"] if i["kind"] == "upgrade" else i["period"], i["total"], i["due_on"])
            for i in ordered]


def by_period(invoices: list[dict[str, Any]], period: str) -> dict[str, Any]:
    [found] = [i for i in invoices if i["period"] == period and i["kind"] != "upgrade"]
    return found


def test_a_monthly_and_an_annual_contract_through_a_year(any_api: Harness) -> None:
    api = any_api
    # -- 2026-03: applications and approval (service starts on the 1st of the next month, Art. 8.1)
    api.set_clock(jst(2026, 3, 2, 10))
    monthly = api.apply("M-1", grade="standard", users=10, cycle="monthly")
    annual = api.apply("A-1", grade="light", users=5, cycle="annual")
    api.set_clock(jst(2026, 3, 10, 10))
    for cid in (monthly, annual):
        r = api.post(f"/v1/contracts/{cid}/approve")
        assert r.json()["first_month"] == "2026-04"

    def month_start(month: Month) -> None:
        api.set_clock(jst(month.year, month.month, 1, 9))
        for cid in (monthly, annual):
            api.advance(cid)

    month = Month(2026, 4)
    while month <= Month(2027, 4):
        month_start(month)
        if month == Month(2026, 5):
            api.set_clock(jst(2026, 5, 20, 10))
            april = by_period(api.invoices(monthly), "2026-04")
            r = api.post(f"/v1/contracts/{monthly}/payments",
                         {"invoice_id": april["invoice_id"], "amount": 24200, "paid_on": "2026-05-20"})
            assert r.status_code == 200 and r.json()["outstanding"] == 0
        if month == Month(2026, 6):
            api.set_clock(jst(2026, 6, 10, 10))  # June deadline 06-23: effective July
            r = api.post(f"/v1/contracts/{monthly}/changes", {"users": 12})
            assert r.json()["effective_month"] == "2026-07"
        if month == Month(2026, 7):
            api.set_clock(jst(2026, 7, 10, 10))
            may = by_period(api.invoices(monthly), "2026-05")
            api.post(f"/v1/contracts/{monthly}/payments",
                     {"invoice_id": may["invoice_id"], "amount": 13200, "paid_on": "2026-07-10"})
            may = by_period(api.invoices(monthly), "2026-05")
            # due 06-30, paid 07-10: 9 days late: floor(13,200 x 0.145 x 9 / 365) = 47 (Art. 9.4)
            assert (may["outstanding"], may["late_interest"]) == (0, 47)
        if month == Month(2026, 8):
            api.set_clock(jst(2026, 8, 12, 12))
            outage = api.post("/v1/outages", {"service": "kintone", "started_at": iso(jst(2026, 8, 10, 9)),
                                              "ended_at": iso(jst(2026, 8, 12, 11)), "cause": "provider_network"})
            assert outage.json()["credit_days"] == 2
            api.set_clock(jst(2026, 8, 20, 10))
            claim = api.post(f"/v1/contracts/{monthly}/sla-claims",
                             {"outage_id": outage.json()["outage_id"], "proof_of_payment": True,
                              "proof_of_breach": True, "evidence": "status page, 50 h"})
            # August fee 1,500 x 12 = 18,000: min floor(18,000 x 2 / 31) = 1,161 (Art. 20.1)
            assert claim.json()["assessment"]["minimum"] == 1161
            upgrade = api.post(f"/v1/contracts/{annual}/changes", {"grade": "standard"})  # deadline 08-24
            # floor((18,000 x 5 - 9,000 x 5) x 7 / 12) = 26,250 for Sep..Mar (Art. 10.1.2)
            assert (upgrade.json()["effective_month"], upgrade.json()["upgrade_charge"],
                    upgrade.json()["remaining_months"]) == ("2026-09", 26250, 7)
            api.set_clock(jst(2026, 8, 22, 10))
            decided = api.post(f"/v1/sla-claims/{claim.json()['claim_id']}/decision", {}, role="operator")
            assert (decided.json()["remedy"], decided.json()["amount"]) == ("fee_reduction", 1161)
        if month == Month(2026, 9):
            api.set_clock(jst(2026, 9, 25, 10))  # after September's deadline (09-18: holidays 21-23)
            r = api.post(f"/v1/contracts/{monthly}/changes", {"grade": "premium"})
            assert (r.json()["requested_month"], r.json()["effective_month"]) == (None, "2026-11")
        if month == Month(2026, 11):
            api.set_clock(jst(2026, 11, 5, 10))  # November deadline 11-20: effective December
            r = api.post(f"/v1/contracts/{annual}/changes", {"users": 8})
            # floor((18,000 x 8 - 18,000 x 5) x 4 / 12) = 18,000 for Dec..Mar
            assert (r.json()["effective_month"], r.json()["upgrade_charge"]) == ("2026-12", 18000)
        if month == Month(2026, 12):
            api.set_clock(jst(2026, 12, 2, 10))
            down = api.post(f"/v1/contracts/{annual}/changes", {"grade": "light"})
            assert down.status_code == 409 and down.json()["article"] == "Art. 10.1.2"
        if month == Month(2027, 1):
            api.set_clock(jst(2027, 1, 5, 10))
            r = api.post(f"/v1/contracts/{monthly}/termination-notice", {"requested_month": "2027-03"})
            assert (r.json()["requested_month"], r.json()["effective_month"]) == ("2027-03", "2027-03")
        month = month.plus(1)

    # -- the monthly contract: 12 invoices, then the noticed end
    m = api.invoices(monthly)
    assert summary(m) == [
        ("monthly", "2026-04", 24200, "2026-05-31"),  # campaign 12,000 + initial fee 10,000 + tax 2,200
        ("monthly", "2026-05", 13200, "2026-06-30"),  # campaign 1,200 x 10 + tax
        ("monthly", "2026-06", 13200, "2026-07-31"),
        ("monthly", "2026-07", 19800, "2026-08-31"),  # 1,500 x 12 + tax
        ("monthly", "2026-08", 19847, "2026-09-30"),  # + May's settled late interest 47, not taxed (Art. 9.4)
        ("monthly", "2026-09", 18522, "2026-10-31"),  # 18,000 - SLA credit 1,161 = 16,839 + tax 1,683
        ("monthly", "2026-10", 19800, "2026-11-30"),
        ("monthly", "2026-11", 33000, "2026-12-31"),  # premium 2,500 x 12 + tax
        ("monthly", "2026-12", 33000, "2027-01-31"),
        ("monthly", "2027-01", 33000, "2027-02-28"),
        ("monthly", "2027-02", 33000, "2027-03-31"),
        ("monthly", "2027-03", 33000, "2027-04-30"),
    ]
    assert lines(by_period(m, "2026-04")) == [("campaign_fee", 12000), ("initial_fee", 10000), ("tax", 2200)]
    assert lines(by_period(m, "2026-07")) == [("base_fee", 18000), ("tax", 1800)]
    assert lines(by_period(m, "2026-09")) == [("base_fee", 18000), ("sla_credit", -1161), ("tax", 1683)]
    assert lines(by_period(m, "2026-11")) == [("base_fee", 30000), ("tax", 3000)]
    assert all(line["rule"] for invoice in m for line in invoice["lines"])  # every line names its rule
    assert sum(i["total"] for i in m) == 293569
    state = api.get(f"/v1/contracts/{monthly}").json()
    assert (state["state"], state["termination_reason"], state["ended_on"], state["retention_until"]) == (
        "terminated", "notice", "2027-03-31", "2027-05-30")

    # -- the annual contract: the term, two mid-term upgrades, the renewal
    a = api.invoices(annual)
    assert summary(a) == [
        ("annual", "2026-04..2027-03", 49500, "2026-05-31"),  # 9,000 x 5 + tax 4,500
        ("upgrade", "2026-09", 28875, "2026-10-31"),  # 26,250 + tax 2,625
        ("upgrade", "2026-12", 19800, "2027-01-31"),  # 18,000 + tax 1,800
        ("annual", "2027-04..2028-03", 158400, "2027-05-31"),  # renewal: 18,000 x 8 + tax 14,400
    ]
    assert lines(by_period(a, "2026-04..2027-03")) == [("base_fee", 45000), ("tax", 4500)]
    upgrades = [i for i in a if i["kind"] == "upgrade"]
    assert sorted(lines(i)[0] for i in upgrades) == [("upgrade_difference", 18000), ("upgrade_difference", 26250)]
    state = api.get(f"/v1/contracts/{annual}").json()
    assert (state["state"], state["grade"], state["users"], state["period"]) == (
        "active", "standard", 8, {"start": "2027-04", "end": "2028-03"})

    # -- the month view a billing system pulls
    september = api.get("/v1/invoices", "auditor", params={"month": "2026-09"}).json()["invoices"]
    assert sorted((i["kind"], i["total"]) for i in september) == [("monthly", 18522), ("upgrade", 28875)]
    assert CONTRACTOR["name"] not in str(september)
