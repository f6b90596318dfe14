"""Rows of the read tables and the store the projections write to (SQLite or PostgreSQL).

Tables (same shape on both stores; ``infrastructure.read_store``):

- ``rm_invoices``: one row per invoice (lines as JSON); ``rm_payments``: one row per payment.
- ``rm_claims``: one row per SLA claim (the assessment as a JSON document).
- ``rm_deadlines``: open deadlines, indexed by ``(due_on, kind, aggregate_id, ref)``.
- ``rm_contracts``: the folded per-contract projection state (JSON) and its version/position.
- ``rm_event_times``: (position, originator, version, recorded_at) for as-of queries.
- ``rm_damaged``: stored events that do not decode, and the later events of their aggregate,
  which the projections did not apply (issue 14).
- ``rm_transfers``: one row per bank transfer (status, value date, amount; no payer), indexed by
  ``(status, value_date, transfer_id)``: the operator's unapplied list (rule book 7).
- the library's tracking table: the last notification id applied (same transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from domain.billing import Invoice


class RebuildInProgress(Exception):
    """Another rebuild of the same read tables holds their rebuild lock (``ReadStore.rebuilding``):
    two would fill and drop the same shadow tables."""


class StalePosition(Exception):
    """The stored tracking position is not the one this batch was computed from (another runner
    advanced it, or a rebuild reset it): the batch is rolled back and recomputed."""


@dataclass(frozen=True)
class InvoiceRow:
    invoice_id: uuid.UUID
    contract_id: uuid.UUID
    kind: str
    period: str
    month: str
    issued_on: date
    due_on: date
    total: int
    paid: int
    outstanding: int
    refunded: int
    lines: str  # JSON list of InvoiceLine dicts
    number: str = ""  # rule book 6.1
    document_type: str = "invoice"  # invoice | credit_note
    counterparty: str = ""  # keyed blind index of the recipient's normalised name (never the name)
    doc: str = "{}"  # JSON: status, issuer, rate totals, document hash, original, reason


@dataclass(frozen=True)
class PaymentRow:
    position: int  # notification id of the PaymentReceived event
    invoice_id: uuid.UUID
    contract_id: uuid.UUID
    paid_on: date
    amount: int
    kind: str = "transfer"  # transfer | credit_balance | reversal (negative) | write_off (rule book 7)


@dataclass(frozen=True)
class ClaimRow:
    claim_id: uuid.UUID
    contract_id: uuid.UUID
    status: str  # pending | granted | rejected
    doc: str  # JSON: the claim with its assessment


@dataclass(frozen=True)
class DeadlineRow:
    due_on: date
    kind: str
    aggregate_id: uuid.UUID
    ref: str


@dataclass(frozen=True)
class StateRow:
    contract_id: uuid.UUID
    service: str
    state: str
    version: int
    position: int
    doc: str  # JSON: application.projections.state.ContractProjection
    customer_number: str = ""  # contract search (issue 19); "" only before the Opened event is seen


@dataclass(frozen=True)
class ContractRow:
    """One contract as contract search answers it (the columns of ``rm_contracts``)."""

    contract_id: uuid.UUID
    customer_number: str
    service: str
    state: str
    version: int


@dataclass(frozen=True)
class EventTimeRow:
    position: int
    originator_id: uuid.UUID
    version: int
    recorded_at: datetime


@dataclass(frozen=True)
class DamagedRow:
    position: int
    aggregate_id: uuid.UUID
    version: int
    event: str  # the event class name (from the stored topic)
    reason: str


@dataclass(frozen=True)
class TransferRow:
    """A bank transfer (rule book 7) as the unapplied list needs it: no payer name (spec 10)."""

    transfer_id: uuid.UUID
    status: str  # unapplied | applied | reversed
    value_date: date
    amount: int
    position: int  # notification id of the transfer's last event applied to the row


@dataclass(frozen=True)
class TransferStatusRow:
    transfer_id: uuid.UUID
    status: str
    position: int  # applied only when newer than the row's


@dataclass
class Changes:
    """Everything one batch of events changes, written in one transaction with the position."""

    invoices: list[InvoiceRow] = field(default_factory=list)  # upsert
    payments: list[PaymentRow] = field(default_factory=list)  # insert
    claims: list[ClaimRow] = field(default_factory=list)  # upsert
    deadlines_removed: list[tuple[uuid.UUID, str, str]] = field(default_factory=list)  # (aggregate, kind, ref)
    deadlines_added: list[DeadlineRow] = field(default_factory=list)  # upsert, after the removals
    deadlines_cleared: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (aggregate, kind)
    states: list[StateRow] = field(default_factory=list)  # upsert
    event_times: list[EventTimeRow] = field(default_factory=list)  # insert
    damaged: list[DamagedRow] = field(default_factory=list)  # insert
    transfers: list[TransferRow] = field(default_factory=list)  # insert unless present
    transfer_status: list[TransferStatusRow] = field(default_factory=list)  # update when newer, after the inserts
    # contracts whose data keys were destroyed: their invoices' counterparty index is cleared (after upserts)
    counterparties_erased: list[uuid.UUID] = field(default_factory=list)

    def __len__(self) -> int:
        return (len(self.invoices) + len(self.payments) + len(self.claims) + len(self.deadlines_removed)
                + len(self.deadlines_added) + len(self.deadlines_cleared) + len(self.states)
                + len(self.event_times) + len(self.damaged) + len(self.transfers) + len(self.transfer_status)
                + len(self.counterparties_erased))


class StateSource(Protocol):
    """What the projector reads back: committed state of contracts and invoices."""

    def load_states(self, contract_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]: ...

    def load_invoices(self, invoice_ids: Sequence[uuid.UUID]) -> list[Invoice]:
        """Invoices with their payments (in recorded order)."""

    def load_contract_invoices(self, contract_ids: Sequence[uuid.UUID]) -> list[Invoice]: ...

    def damaged_aggregates(self) -> set[uuid.UUID]:
        """Aggregates the projections stopped at an undecodable event (``rm_damaged``)."""


class ReadStore(StateSource, Protocol):
    """A read store: tables, tracking position, one-transaction commits and queries."""

    def position(self) -> int:
        """Last notification id applied (0 when empty)."""

    def commit(self, changes: Changes, previous: int, position: int) -> None:
        """Write ``changes`` and move the tracking position from ``previous`` to ``position`` in one
        transaction; raise ``StalePosition`` (and write nothing) if the stored position is not
        ``previous``."""

    def reset(self) -> None:
        """Empty every read table and set the position to 0 (one transaction)."""

    def rebuilding(self) -> AbstractContextManager[None]:
        """Held for the whole of a rebuild (any process, any connection): while it is held, another
        ``rebuilding()`` of these tables raises ``RebuildInProgress`` at once. Released when the
        block ends or the process holding it dies."""

    def shadow(self, create: bool = True) -> ReadStore:
        """A store over new, empty tables beside these (a rebuild writes there, then ``replace_with``);
        ``create=False``: over those tables as they are (a worker process of a split rebuild)."""

    def part(self, number: int) -> ReadStore:
        """A shadow's tables with a tracking position of their own (one worker of a split rebuild)."""

    def adopt_parts(self, parts: int, position: int) -> None:
        """Every part of this shadow at ``position`` (else ``StalePosition``): their positions become
        this shadow's, in one transaction."""

    def replace_with(self, shadow: ReadStore) -> int:
        """In one transaction: these tables take the shadow's rows and position, the shadow is dropped;
        returns the position. On failure nothing changes."""

    def drop(self) -> None:
        """Drop these tables (a shadow that will not be used)."""

    def damaged_events(self) -> list[DamagedRow]:
        """``rm_damaged`` in position order."""

    def invoices_of(self, contract_id: uuid.UUID) -> list[Invoice]: ...

    def invoices_in_month(self, month: str, *, limit: int | None = None,
                          after: uuid.UUID | None = None) -> list[Invoice]: ...

    def invoice(self, invoice_id: uuid.UUID) -> Invoice | None: ...

    def search_invoices(self, *, issued_from: date | None = None, issued_to: date | None = None,
                        amount_min: int | None = None, amount_max: int | None = None,
                        counterparty: str | None = None, after: tuple[date, str] | None = None,
                        limit: int = 100) -> list[Invoice]: ...

    def claims_of(self, contract_id: uuid.UUID) -> list[str]: ...

    def deadlines_until(self, until: date, limit: int | None,
                        after: DeadlineRow | None = None) -> list[DeadlineRow]: ...

    def deadlines_on(self, day: date, kind: str, limit: int) -> list[DeadlineRow]: ...

    def unapplied_transfers(self, limit: int | None) -> list[uuid.UUID]:
        """Transfers kept as unapplied (rule book 7), oldest value date first."""

    def write_transfers(self, changes: Changes) -> None:
        """Only the transfer rows of ``changes``, the tracking position untouched (a backfill)."""

    def state_doc(self, contract_id: uuid.UUID) -> str | None: ...

    def search_contracts(self, customer_number: str | None, service: str | None, states: Sequence[str],
                         limit: int, after: uuid.UUID | None,
                         customer_prefix: str | None = None) -> list[ContractRow]: ...

    def contracts_without_customer(self) -> list[uuid.UUID]: ...

    def set_customer_numbers(self, numbers: dict[uuid.UUID, str]) -> int: ...

    def claim_contract(self, claim_id: uuid.UUID) -> uuid.UUID | None: ...

    def contract_ids(self, service: str | None, states: Sequence[str]) -> list[uuid.UUID]: ...

    def version_at(self, aggregate_id: uuid.UUID, at: datetime | None, position: int | None) -> int | None:
        """Last version of ``aggregate_id`` recorded by instant ``at`` / by notification ``position``."""

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every read table's rows, normalised and sorted (tests, rebuild checks)."""
