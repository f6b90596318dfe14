"""The auditor's desk: the facts of the dashboard and of the contract list (``/ui/``), computed
here so the pages only format them.

Read from the read side (contracts known to it, invoices with outstanding amounts, open
deadlines, its position) and the contracts' aggregates (customer number, service, reference,
state); nothing here is a rule of its own: "overdue" is the billing rule's (an invoice with an
outstanding amount whose due date has passed, Art. 9.4: late from the day after the due date).

The list is built by scanning the contracts the read side knows (each aggregate from the
application's cache); that is fine for a desk over thousands of contracts, not millions
(a searchable read table would be the next step).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from application.read_models import Deadline
from domain.contract import Contract, State

UPCOMING_DAYS = 14
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200


class DeskReadSide(Protocol):
    def contract_ids(self, service: str | None = None, states: tuple[str, ...] = ()) -> list[uuid.UUID]: ...
    def invoices(self, contract_id: uuid.UUID) -> list[dict[str, Any]]: ...
    def deadlines_until(self, until: date, limit: int | None = None) -> list[Deadline]: ...
    def position(self) -> int: ...


@dataclass(frozen=True)
class OverdueInvoice:
    contract_id: uuid.UUID
    customer_number: str
    period: str
    due_on: date
    outstanding: int
    late_interest: int  # as of today (the read side's Art. 9.4 figure)


@dataclass(frozen=True)
class Dashboard:
    today: date
    by_state: dict[str, int]  # every state, in the lifecycle's order (0 when none)
    contracts: int
    overdue: list[OverdueInvoice]  # the oldest due date first
    overdue_total: int
    upcoming: list[Deadline]  # open deadlines due today .. today + UPCOMING_DAYS
    upcoming_until: date
    unfired: list[Deadline]  # open deadlines due before today: the scheduler has not handled them
    projected_position: int  # the last event the read side has processed
    head_position: int  # the last event recorded
    lag_events: int


@dataclass(frozen=True)
class ContractRow:
    contract_id: uuid.UUID
    customer_number: str
    service: str
    reference: str
    state: str


@dataclass(frozen=True)
class ContractQuery:
    """``customer``: part of the customer number (case-insensitive); ``has_reference``: only
    contracts opened with a reference (None: either)."""

    customer: str = ""
    service: str = ""
    state: str = ""
    has_reference: bool | None = None

    def matches(self, c: Contract) -> bool:
        return ((not self.customer or self.customer.casefold() in c.customer_number.casefold())
                and (not self.service or c.service == self.service)
                and (not self.state or c.state.value == self.state)
                and (self.has_reference is None or bool(c.reference) == self.has_reference))


@dataclass(frozen=True)
class ContractPage:
    rows: list[ContractRow]
    total: int
    page: int  # 1-based
    pages: int
    per_page: int
    services: list[str] = field(default_factory=list)


def dashboard(read: DeskReadSide, load: Callable[[uuid.UUID], Contract], head_position: int,
              today: date) -> Dashboard:
    """The dashboard's facts on ``today`` (a JST business date)."""
    ids = read.contract_ids()
    by_state = {s.value: 0 for s in State}
    overdue: list[OverdueInvoice] = []
    for cid in ids:
        contract = load(cid)
        by_state[contract.state.value] += 1
        for inv in read.invoices(cid):
            due_on = date.fromisoformat(str(inv["due_on"]))
            if int(inv["outstanding"]) > 0 and due_on < today:
                overdue.append(OverdueInvoice(cid, contract.customer_number, str(inv["period"]), due_on,
                                              int(inv["outstanding"]), int(inv.get("late_interest") or 0)))
    overdue.sort(key=lambda o: (o.due_on, o.customer_number, o.period))
    until = today + timedelta(days=UPCOMING_DAYS)
    open_deadlines = read.deadlines_until(until)
    upcoming = [d for d in open_deadlines if d.due_on >= today]
    unfired = [d for d in open_deadlines if d.due_on < today]
    position = read.position()
    return Dashboard(today, by_state, len(ids), overdue, sum(o.outstanding for o in overdue), upcoming, until,
                     unfired, position, head_position, max(0, head_position - position))


def matching_contracts(read: DeskReadSide, load: Callable[[uuid.UUID], Contract], query: ContractQuery
                       ) -> tuple[list[ContractRow], list[str]]:
    """Every contract matching ``query``, sorted by customer, service and reference; and the
    services of all contracts (the list's choices)."""
    contracts = [load(cid) for cid in read.contract_ids()]
    services = sorted({c.service for c in contracts})
    found = sorted((c for c in contracts if query.matches(c)),
                   key=lambda c: (c.customer_number, c.service, c.reference))
    return [ContractRow(c.id, c.customer_number, c.service, c.reference, c.state.value) for c in found], services


def contract_list(read: DeskReadSide, load: Callable[[uuid.UUID], Contract], query: ContractQuery,
                  page: int = 1, per_page: int = PAGE_SIZE) -> ContractPage:
    """One page of the contracts matching ``query`` (a page past the last is the last)."""
    per_page = max(1, min(per_page, MAX_PAGE_SIZE))
    found, services = matching_contracts(read, load, query)
    pages = max(1, -(-len(found) // per_page))
    page = max(1, min(page, pages))
    rows: Sequence[ContractRow] = found[(page - 1) * per_page:page * per_page]
    return ContractPage(list(rows), len(found), page, pages, per_page, services)
