"""Sample data for the quick start, created through the service's own HTTP API (``contracts start``).

A fixed story on the sandbox clock, so every fresh start shows the same four contracts:

- ``SAMPLE-MONTHLY``: kintone standard x10, monthly, concluded 2026-01-05, February invoice paid on 02-20;
- ``SAMPLE-ANNUAL``: garoon standard x20, annual, concluded 2026-01-05;
- ``SAMPLE-OVERDUE``: kintone light x5, monthly, concluded 2026-01-05, February invoice (due 03-31)
  left unpaid, so the scheduler marks it overdue on 04-01;
- ``SAMPLE-TRIAL``: a kintone trial started 2026-04-01.

The clock ends at 2026-04-02 10:00 JST. The month starts and the overdue mark are fired by the
scheduler when the clock moves (``PUT /v1/clock``), the way any client sees them; the seeding
waits until no deadline due by the clock's date is left open.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

CONTRACTOR = {"name": "Sample Trading K.K.", "address": "1-1 Sample-cho, Chiyoda-ku, Tokyo",
              "contact_name": "Hanako Sample", "contact_email": "hanako@example.invalid"}
START, MONTH_STARTED, END = "2026-01-05T10:00:00+09:00", "2026-02-20T10:00:00+09:00", "2026-04-02T10:00:00+09:00"
TRIAL_DAY = "2026-04-01T10:00:00+09:00"


class SampleDataError(RuntimeError):
    """The service refused a sample step (message: the step and the service's answer)."""


class Client:
    """A tiny JSON client over ``urllib`` (the service's own API, on 127.0.0.1)."""

    def __init__(self, base_url: str, keys: Mapping[str, str], timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys = keys
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, role: str = "billing") -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"X-API-Key": self.keys[role], "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise SampleDataError(f"{method} {path}: {exc.code} {detail}") from None


def _apply(api: Client, customer: str, service: str, grade: str, users: int, cycle: str | None,
           trial: bool = False) -> str:
    body: dict[str, Any] = {"customer_number": customer, "service": service, "grade": grade, "users": users,
                            "contractor": CONTRACTOR, "trial": trial}
    if cycle is not None:
        body["billing_cycle"] = cycle
    return str(api.call("POST", "/v1/contracts", body)["contract_id"])


def _set_clock(api: Client, instant: str, settle_seconds: float) -> None:
    today = api.call("PUT", "/v1/clock", {"now": instant})["today"]
    deadline = time.monotonic() + settle_seconds
    while api.call("GET", f"/v1/deadlines?until={today}", role="auditor")["deadlines"]:
        if time.monotonic() > deadline:
            raise SampleDataError(f"the scheduler left deadlines due by {today} open after {settle_seconds:.0f} s")
        time.sleep(0.2)


def create_sample_data(api: Client, settle_seconds: float = 60.0) -> dict[str, str]:
    """Create the four sample contracts; returns customer number -> contract id."""
    _set_clock(api, START, settle_seconds)
    ids = {
        "SAMPLE-MONTHLY": _apply(api, "SAMPLE-MONTHLY", "kintone", "standard", 10, "monthly"),
        "SAMPLE-ANNUAL": _apply(api, "SAMPLE-ANNUAL", "garoon", "standard", 20, "annual"),
        "SAMPLE-OVERDUE": _apply(api, "SAMPLE-OVERDUE", "kintone", "light", 5, "monthly"),
    }
    for cid in ids.values():
        api.call("POST", f"/v1/contracts/{cid}/approve")
    _set_clock(api, MONTH_STARTED, settle_seconds)  # the scheduler starts February: first invoices
    monthly = ids["SAMPLE-MONTHLY"]
    february = [i for i in api.call("GET", f"/v1/contracts/{monthly}/invoices")["invoices"]
                if i["period"] == "2026-02"]
    if not february:
        raise SampleDataError("the monthly sample contract has no February invoice")
    invoice = february[0]
    api.call("POST", f"/v1/contracts/{monthly}/payments",
             {"invoice_id": invoice["invoice_id"], "amount": invoice["total"], "paid_on": "2026-02-20"})
    _set_clock(api, TRIAL_DAY, settle_seconds)  # SAMPLE-OVERDUE's February invoice is overdue from 04-01
    ids["SAMPLE-TRIAL"] = _apply(api, "SAMPLE-TRIAL", "kintone", "standard", 5, None, trial=True)
    _set_clock(api, END, settle_seconds)
    return ids
