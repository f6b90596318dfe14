"""The read side as its consumers (API, scheduler, UI, audit) see it.

Implemented by ``application.projections`` over SQLite or PostgreSQL read tables; this
module only fixes the shapes so the consumers do not depend on storage details.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from domain.calendar import Month


@dataclass(frozen=True, order=True)
class Deadline:
    due_on: date
    kind: str  # a name of ``domain.deadlines.DEADLINE_KINDS``
    aggregate_id: uuid.UUID  # the contract (or the discontinuation / terms change aggregate)
    ref: str = ""  # invoice id, claim id, month "YYYY-MM", service code ...


@dataclass(frozen=True)
class ContractSummary:
    """A contract as contract search finds it (the read side's columns; GET the contract for more)."""

    contract_id: uuid.UUID
    customer_number: str
    service: str
    state: str
    version: int


class ReadModels(Protocol):
    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """Block until every projection has processed notification ``position`` (read-your-writes)."""

    def invoices(self, contract_id: uuid.UUID, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """Invoices with lines, payments, outstanding and late interest (as of ``as_of``'s JST date
        if given: only what was recorded by then)."""

    def invoices_for_month(self, month: Month, *, limit: int | None = None,
                           after: uuid.UUID | None = None) -> list[dict[str, Any]]: ...

    def claims(self, contract_id: uuid.UUID) -> list[dict[str, Any]]:
        """SLA claims with eligibility, reason, credit days, minimum, maximum, remedy granted."""

    def deadlines_until(self, until: date, limit: int | None = None,
                        after: Deadline | None = None) -> list[Deadline]:
        """Every open deadline due on or before ``until``, ordered by (due_on, kind, id, ref);
        ``after``: only those past that one (the cursor of a page)."""

    def deadlines_on(self, day: date, kind: str, limit: int) -> list[Deadline]:
        """Open deadlines of one ``kind`` due on ``day``, ordered by (id, ref): a page of a large day."""

    def search_contracts(self, *, customer_number: str | None = None, service: str | None = None,
                         states: tuple[str, ...] = (), limit: int = 50, after: uuid.UUID | None = None,
                         customer_prefix: str | None = None) -> list[ContractSummary]:
        """One page of contracts in id order: of one customer (or of customer numbers starting with
        ``customer_prefix``, case-sensitive), of one service, in given states."""
