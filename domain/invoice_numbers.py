"""Invoice numbers: human-readable, sequential per issuer, no gaps, no reuse (rule book 6.1).

``InvoiceSequence`` is an aggregate per issuer (and per year when the number format shows the
year). Its state is only the last number handed out. Issuing is one transaction: the contract
events carrying the numbers (``InvoiceIssued``) and the sequence's ``NumbersAllocated`` event
covering exactly those numbers are stored together, so a number exists only if its invoice
does (no gap), and two writers that drew the same numbers conflict on the sequence's version
(no reuse): one of them is refused and retries with the next numbers.

``NumberBook`` is the unit of work of one transaction: it hands out numbers in memory, can be
rolled back to a mark (a contract of a batch that fails gives its numbers back before any
later contract takes one), and at the end records one event per sequence it used.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime

from eventsourcing.domain import Aggregate, event

from domain.errors import RuleViolation
from domain.invoicing import format_number, number_scope

SEQUENCE_NAMESPACE = uuid.UUID("2d8f1b7e-93a4-4c1e-8f0b-5e6a7c9d1f23")
ARTICLE = "rule book 6.1"


class InvoiceSequence(Aggregate):
    """The register of one issuer's invoice numbers (per ``scope``: a year, or ``all``)."""

    @staticmethod
    def create_id(registration_number: str, scope: str) -> uuid.UUID:
        return uuid.uuid5(SEQUENCE_NAMESPACE, f"{registration_number}\x1f{scope}")

    @event("Started")
    def __init__(self, registration_number: str, scope: str) -> None:
        self.registration_number = registration_number
        self.scope = scope
        self.last = 0

    @classmethod
    def start(cls, registration_number: str, scope: str) -> InvoiceSequence:
        return cls(registration_number=registration_number, scope=scope)

    def allocate(self, first: int, last: int, at: datetime | None) -> None:
        """Record that ``first..last`` were given to invoices stored in this transaction."""
        if first != self.last + 1 or last < first:
            raise RuleViolation(ARTICLE, f"numbers must continue at {self.last + 1} (got {first}..{last})")
        self._allocated(first=first, last=last, at=at)

    @event("NumbersAllocated")
    def _allocated(self, first: int, last: int, at: datetime | None) -> None:
        self.last = last


class NumberBook:
    """Numbers for one transaction. ``sequence_for(scope)`` loads or starts the sequence."""

    def __init__(self, fmt: str, registration_number: str,
                 sequence_for: Callable[[str], InvoiceSequence]) -> None:
        self.fmt = fmt
        self.registration_number = registration_number
        self._sequence_for = sequence_for
        self._sequences: dict[str, InvoiceSequence] = {}
        self._next: dict[str, int] = {}

    def allocate(self, issued_on: date) -> str:
        scope = number_scope(self.fmt, issued_on.year)
        if scope not in self._sequences:
            sequence = self._sequence_for(scope)
            self._sequences[scope] = sequence
            self._next[scope] = sequence.last + 1
        seq = self._next[scope]
        self._next[scope] = seq + 1
        return format_number(self.fmt, issued_on.year, seq)

    def mark(self) -> dict[str, int]:
        return dict(self._next)

    def rollback(self, mark: dict[str, int]) -> None:
        """Give back every number handed out since ``mark`` (nothing using them is saved)."""
        for scope in list(self._next):
            if scope in mark:
                self._next[scope] = mark[scope]
            else:
                self._next[scope] = self._sequences[scope].last + 1

    def used(self) -> int:
        return sum(self._next[s] - self._sequences[s].last - 1 for s in self._sequences)

    def close(self, at: datetime | None) -> list[InvoiceSequence]:
        """Record the allocations: the sequences to save with the invoices (none if no number was used)."""
        touched = []
        for scope, sequence in self._sequences.items():
            last = self._next[scope] - 1
            if last > sequence.last:
                sequence.allocate(sequence.last + 1, last, at)
                touched.append(sequence)
        return touched
