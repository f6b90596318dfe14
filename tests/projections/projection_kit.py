"""Helpers for the projection tests: JST instants and short contract histories."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from application.service import ContractsApplication
from domain.calendar import JST, Month
from domain.contract import BillingCycle

APRIL = Month(2026, 4)
CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo"}


def jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    """An instant at ``h`` o'clock Tokyo time, as UTC."""
    return datetime(y, m, d, h, tzinfo=JST).astimezone(UTC)


def paid_contract(app: ContractsApplication, customer: str, *, service: str = "kintone", grade: str = "standard",
                  users: int = 10, cycle: BillingCycle = BillingCycle.MONTHLY, approved: date = date(2026, 3, 24),
                  until: Month | None = APRIL) -> uuid.UUID:
    """Applied and approved on ``approved`` (first month = next month), advanced to ``until``."""
    r = app.open_contract(customer, service, grade, users, CONTRACTOR, jst(approved.year, approved.month, 1),
                          cycle=cycle)
    app.approve(r.aggregate_id, jst(approved.year, approved.month, approved.day))
    if until is not None:
        app.advance(r.aggregate_id, until)
    return r.aggregate_id


def lines(invoice: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(line["kind"], line["rule"], line["amount"]) for line in invoice["lines"]]


def by_period(invoices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["period"]: i for i in invoices}
