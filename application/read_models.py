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

DEADLINE_KINDS = (
    "trial_end",  # TrialExpired on that date (Art. 5.2)
    "month_start",  # first period / renewal / change effective / noticed end (Art. 8, 10)
    "payment_overdue",  # day after the due date with money unpaid (Art. 9.5)
    "suspension_notice",  # overdue for suspension_notice_after_days (spec 7)
    "suspension_stop",  # stop date of a suspension notice (spec 7)
    "sla_window_end",  # claim window closed: undecided claims get the POLICY default (Art. 20.3)
    "retention_deletion",  # DataDeleted (Art. 15.3 / 15.5)
    "discontinuation",  # service discontinuation date (Art. 18)
    "terms_change_effective",  # terms change takes effect (Art. 28)
)


@dataclass(frozen=True, order=True)
class Deadline:
    due_on: date
    kind: str
    aggregate_id: uuid.UUID  # the contract (or the discontinuation / terms change aggregate)
    ref: str = ""  # invoice id, claim id, month "YYYY-MM", service code ...


class ReadModels(Protocol):
    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """Block until every projection has processed notification ``position`` (read-your-writes)."""

    def invoices(self, contract_id: uuid.UUID, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """Invoices with lines, payments, outstanding and late interest (as of ``as_of``'s JST date
        if given: only what was recorded by then)."""

    def invoices_for_month(self, month: Month) -> list[dict[str, Any]]: ...

    def claims(self, contract_id: uuid.UUID) -> list[dict[str, Any]]:
        """SLA claims with eligibility, reason, credit days, minimum, maximum, remedy granted."""

    def deadlines_until(self, until: date, limit: int | None = None) -> list[Deadline]:
        """Every open deadline due on or before ``until``, ordered by (due_on, kind, id)."""

    def deadlines_on(self, day: date, kind: str, limit: int) -> list[Deadline]:
        """Open deadlines of one ``kind`` due on ``day``, ordered by (id, ref): a page of a large day."""
