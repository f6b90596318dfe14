"""What the notification services need from storage and transport (implemented in
``infrastructure.webhooks``), and the records they exchange.

Tables (SQLite and PostgreSQL, next to the events): ``wh_endpoints`` (secrets sealed),
``wh_endpoint_log`` (who changed what, and automatic disabling), ``wh_deliveries`` (one row per
notification and endpoint: the queue and its state), ``wh_attempts`` (every HTTP attempt) and
the library's tracking table (the queue's position in the event stream, written in the same
transaction as the queue rows).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

ACTIVE, DISABLED, DELETED = "active", "disabled", "deleted"
PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
ALL_TYPES = "*"


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: uuid.UUID
    url: str
    description: str
    event_types: tuple[str, ...]  # ("*",): every type
    personal_data: bool  # may receive personal fields (spec 10); otherwise they read "[redacted]"
    status: str  # active | disabled | deleted
    created_at: datetime
    updated_at: datetime
    created_position: int  # notifications after this position are queued for the endpoint
    disabled_reason: str | None = None
    failing_since: datetime | None = None  # first failure since the last success
    previous_secret_expires_at: datetime | None = None  # a rolled secret still signs until then

    def wants(self, type_name: str) -> bool:
        return ALL_TYPES in self.event_types or type_name in self.event_types


@dataclass(frozen=True)
class Secrets:
    current: str
    previous: str | None = None
    previous_expires_at: datetime | None = None

    def signing(self, now: datetime) -> list[str]:
        """The secrets that sign at ``now``: the current one, and the previous during its overlap."""
        out = [self.current]
        if self.previous and self.previous_expires_at is not None and now < self.previous_expires_at:
            out.append(self.previous)
        return out


@dataclass(frozen=True)
class QueueRow:
    """One notification for one endpoint, as the deriver queues it."""

    endpoint_id: uuid.UUID
    notification_id: uuid.UUID
    position: int
    type: str
    version: int
    ordering_key: uuid.UUID  # the event's aggregate: a later notification waits for an earlier one
    contract_id: uuid.UUID | None
    service: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Claimed:
    """A queue row leased to one sender (``lease`` names the lease; an expired one is re-claimed)."""

    row: QueueRow
    attempts: int  # every attempt so far (the attempt log's numbering)
    failures: int  # failed attempts since the row was (re)queued: the back-off's exponent
    first_attempt_at: datetime | None  # of the current retry period
    lease: str
    url: str = ""  # the endpoint's, read with the claim (one query per batch, not per attempt)
    personal_data: bool = False
    secrets: Secrets | None = None


@dataclass(frozen=True)
class Attempt:
    attempt: int
    at: datetime
    status_code: int | None  # None: no HTTP answer (timeout, refused connection)
    latency_ms: int
    error: str | None = None  # short, never the body or a secret


@dataclass(frozen=True)
class Delivery:
    row: QueueRow
    status: str
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    history: tuple[Attempt, ...] = field(default=())


@dataclass(frozen=True)
class EndpointLogEntry:
    at: datetime
    actor: str
    action: str
    detail: str


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    latency_ms: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender(Protocol):
    def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        """POST ``body`` to ``url`` (bounded by the sender's timeouts); never raises for HTTP trouble."""


class WebhookStore(Protocol):
    # -- endpoints
    def insert_endpoint(self, endpoint: Endpoint, secret: str, actor: str) -> None: ...
    def get_endpoint(self, endpoint_id: uuid.UUID) -> Endpoint | None: ...
    def list_endpoints(self, include_deleted: bool = False) -> list[Endpoint]: ...
    def update_endpoint(self, endpoint: Endpoint, actor: str, action: str, detail: str) -> None:
        """Store the endpoint's url, description, types, personal flag, status and reason."""
    def roll_secret(self, endpoint_id: uuid.UUID, secret: str, previous_expires_at: datetime | None,
                    at: datetime, actor: str) -> None: ...
    def secrets(self, endpoint_id: uuid.UUID) -> Secrets | None: ...
    def endpoint_log(self, endpoint_id: uuid.UUID) -> list[EndpointLogEntry]: ...

    # -- the queue, derived from the event stream
    def position(self) -> int:
        """Last notification id the queue was derived up to."""
    def enqueue(self, rows: Sequence[QueueRow], previous: int, position: int, now: datetime) -> None:
        """Insert ``rows`` (pending, due at once) and move the tracking position from ``previous`` to
        ``position`` in one transaction; raise ``application.projections.ports.StalePosition`` if
        the stored position is not ``previous`` (another deriver got there first)."""
    def add_rows(self, rows: Sequence[QueueRow], now: datetime) -> int:
        """Insert rows not already queued (manual redelivery of a range); returns how many."""

    # -- delivery
    def claim(self, now: datetime, limit: int, lease_until: datetime) -> list[Claimed]:
        """Lease up to ``limit`` due rows of active endpoints, each the earliest pending row of its
        endpoint and ordering key (per-contract order); safe with several senders."""
    def release(self, claimed: Claimed) -> None:
        """Give the lease back without an attempt (the endpoint was disabled meanwhile)."""
    def finish(self, claimed: Claimed, attempt: Attempt, status: str, next_attempt_at: datetime | None,
               now: datetime) -> datetime | None:
        """Record ``attempt`` and the row's new ``status`` (pending with ``next_attempt_at``,
        delivered or failed) if ``claimed.lease`` still holds; update the endpoint's health.
        Returns the endpoint's ``failing_since`` after this attempt."""
    def finish_many(self, outcomes: Sequence[tuple[Claimed, Attempt, str, datetime | None]], now: datetime
                    ) -> dict[uuid.UUID, datetime | None]:
        """``finish`` for many attempts in one transaction; each endpoint's ``failing_since`` after."""
    def redeliver(self, endpoint_id: uuid.UUID, notification_ids: Sequence[uuid.UUID] | None,
                  positions: tuple[int, int] | None, now: datetime) -> int:
        """Queue again (pending, due now, a fresh retry period) the given rows, or every row in the
        position range; returns how many."""

    # -- reads
    def deliveries(self, endpoint_id: uuid.UUID, after: int, limit: int, status: str | None
                   ) -> list[Delivery]: ...
    def delivery(self, endpoint_id: uuid.UUID, notification_id: uuid.UUID) -> Delivery | None: ...
    def notices(self, contract_id: uuid.UUID, service: str, since: datetime, types: Sequence[str]
                ) -> list[Delivery]:
        """Deliveries of notice types concerning the contract: its own, its service's, and the
        service-wide ones (terms changes) recorded since ``since``."""
    def notices_at_version(self, contract_id: uuid.UUID, service: str, since: datetime, types: Sequence[str]
                           ) -> tuple[int | None, list[Delivery]] | None:
        """``notices`` and the contract's stored version (its last event's; None: none stored) read
        in one statement, or None where this store cannot read the events with them."""
    def counts(self) -> dict[str, int]:
        """Queue rows by status."""
