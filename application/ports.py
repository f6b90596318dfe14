"""The ports of the application: what it needs from the outside, declared once, implemented in
``infrastructure`` (and wired by ``infrastructure.bootstrap``).

Declared here: the API's own store (keys, idempotency keys, sandbox clock, web sessions), the
read side as the API sees it, the scheduler's leader lock, the audit's chain store, the bulk
event reader, and the checkpoints' signer, verifier and store.
The other ports live beside their one consumer: ``application.clock.Clock``,
``application.read_models.ReadModels`` (the read side as the API, scheduler and UI see it),
``application.sweep.DeadlineSource`` and ``application.projections.ports.ReadStore`` (what the
projector writes to).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from eventsourcing.persistence import StoredEvent

from application.read_models import ReadModels
from domain.billing import Invoice
from domain.contract import Contract

# --------------------------------------------------------------------------- API store


@dataclass(frozen=True)
class ApiKeyRecord:
    key_hash: str
    role: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class IdempotencyRecord:
    """An idempotency key that someone else (or an earlier request) already holds."""

    request_hash: str
    status: str  # "in_progress" | "done"
    response_status: int | None
    response_headers: dict[str, str]
    response_body: bytes | None
    created_at: datetime


@dataclass(frozen=True)
class UiSessionRecord:
    """A live login session of the web pages (stored by the hash of its id)."""

    key_hash: str
    created_at: datetime
    last_seen: datetime


class KeyNameTaken(Exception):
    """An API key with that name already exists (names identify principals)."""


class ApiStore(Protocol):
    def setup(self) -> None: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...

    def insert_key(self, key_hash: str, role: str, name: str, created_at: datetime) -> None: ...
    def find_key(self, key_hash: str) -> ApiKeyRecord | None: ...
    def list_keys(self) -> list[ApiKeyRecord]: ...
    def revoke_key(self, name: str, at: datetime) -> bool: ...
    def on_revoke(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` after this store revoked a key (caches of valid keys drop it)."""

    def claim_idempotency(self, key: str, principal: str, request_hash: str, now: datetime,
                          stale_before: datetime, expired_before: datetime) -> IdempotencyRecord | None: ...
    def finish_idempotency(self, key: str, principal: str, status: int, headers: Mapping[str, str],
                           body: bytes) -> None: ...
    def release_idempotency(self, key: str, principal: str) -> None: ...
    def purge_idempotency(self, before: datetime) -> int: ...

    def insert_session(self, session_hash: str, key_hash: str, now: datetime) -> None: ...
    def touch_session(self, session_hash: str, now: datetime, idle_after: datetime,
                      absolute_after: datetime) -> UiSessionRecord | None:
        """The session if it was last seen at or after ``idle_after`` and created at or after
        ``absolute_after`` (its last-seen time set to ``now``); an expired one is deleted."""
    def delete_session(self, session_hash: str) -> None: ...
    def purge_sessions(self, idle_after: datetime, absolute_after: datetime) -> int: ...
    def count_sessions(self) -> int: ...

    def get_clock(self) -> datetime | None: ...
    def advance_clock(self, to: datetime, at: datetime) -> datetime: ...


# --------------------------------------------------------------------------- read side as the API sees it


class ApiReadModels(ReadModels, Protocol):
    """The read side as the API uses it: ``ReadModels`` plus as-of and claim lookups
    (``infrastructure.read_side.ReadModelsImpl``)."""

    def contract_as_of(self, contract_id: uuid.UUID, at: datetime | None = None) -> Contract | None: ...

    def claim_contract(self, claim_id: uuid.UUID) -> uuid.UUID | None: ...

    def contract_ids(self, service: str | None = None, states: tuple[str, ...] = ()) -> list[uuid.UUID]: ...

    def unapplied_transfer_ids(self, limit: int | None = None) -> list[uuid.UUID]:
        """Rule book 7: transfers kept as unapplied, oldest value date first (the transfers table)."""

    def position(self) -> int: ...

    def invoice(self, invoice_id: uuid.UUID) -> Invoice:
        """One issued invoice or credit note as issued, with its recipient (rule book 6.1)."""

    def render_invoice(self, invoice: Invoice, interest_on: date | None = None) -> dict[str, Any]: ...

    def search_invoices(self, *, issued_from: date | None = None, issued_to: date | None = None,
                        amount_min: int | None = None, amount_max: int | None = None,
                        counterparty: str | None = None, after: tuple[date, str] | None = None,
                        limit: int = 100) -> list[dict[str, Any]]:
        """Issued invoices and credit notes by date and amount ranges and counterparty (rule book 13)."""


# --------------------------------------------------------------------------- leader lock


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Try to become (or stay) the leader without blocking; True if this process leads now."""

    def still_held(self) -> bool:
        """Cheap check during a sweep: False once leadership is lost."""

    def release(self) -> None: ...

    def describe(self) -> str: ...


# --------------------------------------------------------------------------- audit and bulk reads


@dataclass(frozen=True)
class ChainRow:
    """One stored event with its recorded chain hash (``None`` if none was recorded)."""

    position: int
    originator_id: uuid.UUID
    version: int
    topic: str
    state: bytes
    hash: bytes | None

    def stored_event(self) -> StoredEvent:
        return StoredEvent(originator_id=self.originator_id, originator_version=self.version,
                           topic=self.topic, state=self.state)


@runtime_checkable
class ChainStore(Protocol):
    """What the chained recorders (``infrastructure.persistence``) offer the audit."""

    def chain_rows(self, originator_id: uuid.UUID | None, after: tuple[uuid.UUID, int] | None,
                   limit: int) -> Sequence[ChainRow]:
        """Events with their hashes ordered by (aggregate, version), after the key ``after``."""

    def log_rows(self, after_position: int, limit: int) -> Sequence[ChainRow]:
        """Events with their hashes in notification order, after ``after_position``."""

    def orphan_hashes(self, originator_id: uuid.UUID | None, limit: int) -> Sequence[tuple[uuid.UUID, int]]:
        """(aggregate, version) of hashes whose event row is gone."""


@runtime_checkable
class BulkEventReader(Protocol):
    """A recorder that reads the events of many aggregates in one query, ordered by aggregate
    and version (the SQLite and PostgreSQL stores of ``infrastructure.persistence``)."""

    def select_events_of(self, originator_ids: Sequence[uuid.UUID]) -> Sequence[StoredEvent]: ...


# --------------------------------------------------------------------------- signed checkpoints


class CheckpointSigner(Protocol):
    """Signs checkpoints with a key kept outside the database (``infrastructure.checkpoint_keys``)."""

    @property
    def public_key(self) -> str:
        """The verifying key, base64 of its raw bytes (what auditors are given)."""

    def sign(self, data: bytes) -> bytes: ...


class CheckpointVerifier(Protocol):
    @property
    def public_key(self) -> str: ...

    def verify(self, data: bytes, signature: bytes) -> bool: ...


class CheckpointStore(Protocol):
    """Where the service keeps its own checkpoints (a table next to the events). A convenience:
    whoever can write to the database can delete rows there, so auditors keep exported copies
    (``contracts audit checkpoint --out``, ``CONTRACTS_CHECKPOINT_DIR``)."""

    def latest(self) -> dict[str, Any] | None: ...

    def add(self, document: Mapping[str, Any]) -> None: ...
