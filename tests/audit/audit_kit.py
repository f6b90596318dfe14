"""Helpers for the audit tests (spec 10, issue 6): distinctive personal data and a scripted
lifecycle that stores every kind of it (imported by the tests of this folder)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from application.service import ContractsApplication
from domain.calendar import JST, Month
from domain.contract import BillingCycle
from domain.errors import DomainError
from domain.sla import OutageCause
from infrastructure.bootstrap import Services

PERSON = {
    "name": "株式会社オーディット商事",
    "address": "東京都千代田区監査町1-2-3",
    "contact_name": "Taro Auditsample",
    "contact_email": "taro.auditsample@example.invalid",
    "contact_phone": "03-5555-0142",
    "store_admin_name": "Jiro Storeadminsample",
    "store_admin_email": "jiro.storeadmin@example.invalid",
}
CHANGED = {**PERSON, "name": "Renamed Holdings Auditkabu", "contact_email": "new.contact.audit@example.invalid"}
EVIDENCE = "Ticket 8812 raised by Taro Auditsample (taro.auditsample@example.invalid): 50 hours down"
CUSTOMER = "CUST-AUDIT-0001"
SECRETS = sorted({*PERSON.values(), *CHANGED.values(), EVIDENCE})


def jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=JST).astimezone(UTC)


@dataclass
class Store:
    """One empty store: the services, a way to reopen it (a new process), raw bytes and SQL."""

    backend: str
    services: Services
    reopen: Callable[[], Services]
    raw_bytes: Callable[[], bytes]
    execute: Callable[[str, tuple[Any, ...]], None]
    events_table: str
    hashes_table: str

    @property
    def app(self) -> ContractsApplication:
        return self.services.app


@dataclass
class Lifecycle:
    contract_id: uuid.UUID
    outage_id: uuid.UUID
    claim_id: uuid.UUID
    refusals: list[str]


def run_lifecycle(app: ContractsApplication) -> Lifecycle:
    """Trial -> paid -> contractor change -> grade change -> late payment -> SLA claim with
    evidence -> termination. Every contractor field and the evidence carry personal data.
    Refused commands are collected: their messages must not carry personal data either."""
    refusals: list[str] = []

    def refused(action: Callable[[], Any]) -> None:
        try:
            action()
        except DomainError as exc:
            refusals.append(str(exc))
        else:
            raise AssertionError("expected a refusal")

    cid = app.open_contract(CUSTOMER, "kintone", "standard", 10, PERSON, jst(2026, 3, 2), trial=True).aggregate_id
    refused(lambda: app.open_contract(CUSTOMER, "kintone", "standard", 10, PERSON, jst(2026, 3, 2), trial=True))
    app.apply_from_trial(cid, "standard", 10, BillingCycle.MONTHLY, None, jst(2026, 3, 20))
    app.approve(cid, jst(2026, 3, 24))
    app.advance(cid, Month(2026, 4))
    refused(lambda: app.change_contractor(cid, {**PERSON, "name": ""}, jst(2026, 4, 9)))
    app.change_contractor(cid, CHANGED, jst(2026, 4, 10))
    app.request_change(cid, "premium", 12, None, jst(2026, 4, 22))
    app.advance(cid, Month(2026, 6))
    april = next(i for i in app.get_contract(cid).ledger.invoices.values() if i.period == "2026-04")
    app.mark_overdue(cid, april.invoice_id, datetime(2026, 6, 1).date())
    app.record_payment(cid, april.invoice_id, april.total, datetime(2026, 7, 1).date(), jst(2026, 7, 1))
    outage = app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK,
                               jst(2026, 6, 12, 12)).aggregate_id
    app.claim_sla(cid, outage, jst(2026, 6, 20), True, True, EVIDENCE)
    claim_id = app.claim_id(cid, outage)
    app.decide_claim(cid, claim_id, None, None, jst(2026, 6, 22))
    app.advance(cid, Month(2026, 7))
    app.notice_termination(cid, None, jst(2026, 7, 10))
    app.advance(cid, Month(2026, 9))
    return Lifecycle(cid, outage, claim_id, refusals)


def settle(app: ContractsApplication, cid: uuid.UUID) -> None:
    """Pay what the lifecycle left unpaid, on 2026-09-01 (nothing owed: spec 10), and then the
    interest invoice its late principal brings (rule book 6, Art. 9.4: billed at once, the contract
    has ended; issued 2026-09-01, in the same fiscal year as the last invoice)."""
    while unpaid := [i for i in app.get_contract(cid).ledger.invoices.values() if i.outstanding > 0]:
        for inv in unpaid:
            app.record_payment(cid, inv.invoice_id, inv.outstanding, date(2026, 9, 1), jst(2026, 9, 1))


def erase_contractor_data(app: ContractsApplication, cid: uuid.UUID) -> None:
    """Settle, then erase the contractor data when the records period ends: last invoice 2026-08-01,
    fiscal year to 2027-03-31, return filed by 2027-05-31, + 7 years -> kept until 2034-05-31,
    erased 2034-06-01."""
    settle(app, cid)
    app.erase_contractor_data(cid, date(2034, 6, 1))


def leaked(raw: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in raw]
