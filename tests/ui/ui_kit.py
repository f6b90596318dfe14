"""The contract history the web-page tests look at, made through the HTTP API only, its
hand-computed figures, and TestClient helpers (imported by the tests of this folder).

Sample catalog, kintone standard: campaign 1,200 yen/user/month for the first 3 service months,
initial fee 10,000, tax 10 % once per invoice, due on the last day of the next month (spec 6).
Late interest 14.5 % a year, per day from the day after the due date to the day before
payment (or before the as-of date), one floor per invoice (Art. 9.4).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from api_harness import Harness

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's TestClient warns about httpx versions
    from fastapi.testclient import TestClient

CUSTOMER = "UI-0001"
CONTRACTOR = {"name": "Mikan Shoji K.K.", "address": "2-2 Sample-cho, Osaka", "contact_name": "Ichiro Sample",
              "contact_email": "ichiro@example.invalid"}

# Invoice totals: April 12,000 campaign + 10,000 initial fee + 2,200 tax; May and June 12,000 + 1,200 tax.
APRIL, MAY, JUNE = 24_200, 13_200, 13_200
PAID_ON = "2026-06-15"
# As of 06-20 (after the payment on 06-15, due 05-31): 14 days late, floor(24,200 x 0.145 x 14 / 365) = 134.
INTEREST_PAID = 134
# As of 06-10 (the payment not made yet): 9 days (06-01..06-09), floor(24,200 x 0.145 x 9 / 365) = 86.
INTEREST_0610 = 86
EXPECTED = {
    # as_of: {invoice period: (total, outstanding, late interest)}, total outstanding
    "2026-06-20": ({"2026-04": (APRIL, 0, INTEREST_PAID), "2026-05": (MAY, MAY, 0), "2026-06": (JUNE, JUNE, 0)},
                   MAY + JUNE),
    "2026-06-10": ({"2026-04": (APRIL, APRIL, INTEREST_0610), "2026-05": (MAY, MAY, 0), "2026-06": (JUNE, JUNE, 0)},
                   APRIL + MAY + JUNE),
    "2026-04-15": ({"2026-04": (APRIL, APRIL, 0)}, APRIL),
    "2026-03-05": ({}, 0),
}
TODAY = "2026-06-20"

Call = Callable[[str, str, Any, str], httpx.Response]


def _jst(day: str, hour: int = 10) -> str:
    return f"{day}T{hour:02d}:00:00+09:00"


def call_retrying(call: Call, method: str, path: str, body: Any, role: str, expect: int = 200) -> httpx.Response:
    """A call that retries a write race (409 conflict): a server's deadline sweep may be writing
    the same contract at that moment (sandbox mode sweeps whenever the clock moves)."""
    deadline = time.monotonic() + 20
    while True:
        r = call(method, path, body, role)
        conflict = r.status_code == 409 and r.json().get("type") == "urn:contracts:problem:conflict"
        if not conflict or time.monotonic() > deadline:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
            return r
        time.sleep(0.1)


@dataclass
class Made:
    contract_id: str


def make_history(call: Call, customer: str = CUSTOMER, contractor: dict[str, str] | None = None) -> Made:
    """Trial on 03-02, paid application and approval on 03-10 (service from April), month starts of
    April, May and June (operator ``advance``), the April invoice paid late on 06-15; clock left at
    06-20."""
    def clock(day: str, hour: int = 10) -> None:
        call_retrying(call, "PUT", "/v1/clock", {"now": _jst(day, hour)}, "billing")

    clock("2026-03-02")
    r = call_retrying(call, "POST", "/v1/contracts", {
        "customer_number": customer, "service": "kintone", "grade": "standard", "users": 10,
        "contractor": contractor or CONTRACTOR, "trial": True}, "billing", expect=201)
    cid = r.json()["contract_id"]
    clock("2026-03-10")
    call_retrying(call, "POST", f"/v1/contracts/{cid}/application",
                  {"grade": "standard", "users": 10, "billing_cycle": "monthly"}, "billing")
    call_retrying(call, "POST", f"/v1/contracts/{cid}/approve", None, "billing")
    for month in ("2026-04", "2026-05", "2026-06"):
        clock(f"{month}-01", 9)
        call_retrying(call, "POST", f"/v1/contracts/{cid}/advance", None, "operator")
    clock(PAID_ON)
    april = _invoice(call, cid, "2026-04")
    assert april["total"] == APRIL, april
    call_retrying(call, "POST", f"/v1/contracts/{cid}/payments",
                  {"invoice_id": april["invoice_id"], "amount": APRIL, "paid_on": PAID_ON}, "billing")
    clock(TODAY)
    return Made(cid)


def _invoice(call: Call, cid: str, period: str) -> dict[str, Any]:
    """The invoice of a period from the read side (polled: a server's projection runs on its own)."""
    deadline = time.monotonic() + 20
    while True:
        r = call("GET", f"/v1/contracts/{cid}/invoices", None, "billing")
        assert r.status_code == 200, r.text
        found = [i for i in r.json()["invoices"] if i["period"] == period]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, f"no invoice {period} on the read side"
        time.sleep(0.1)


def yen(text: str) -> int:
    """A figure as the page prints it ("24,200", "24,200 yen") as an integer."""
    return int(text.replace("yen", "").replace(",", "").strip())


def browser_client(api: Harness, role: str | None, base_url: str = "http://testserver") -> TestClient:
    """A TestClient of the same app with its own cookie jar, logged in with the role's key."""
    client = TestClient(api.client.app, base_url=base_url, raise_server_exceptions=False)
    if role is not None:
        r = client.post("/ui/login", data={"key": api.keys[role]}, follow_redirects=False)
        assert r.status_code == 303, r.text
    return client


def api_call(api: Harness) -> Call:
    def call(method: str, path: str, body: Any, role: str) -> Any:
        return api.client.request(method, path, json=body, headers=api.headers(role))
    return call
