"""Delivering queued notifications, at least once, in order per contract (spec 12).

A sender leases the due rows (each the earliest pending row of its endpoint and aggregate),
builds each body from its event, signs it with the endpoint's secrets and POSTs it. A 2xx
answer delivers it; anything else (an error status, a timeout, a refused connection) schedules
the next attempt with exponential back-off until ``DeliveryPolicy.retry_days`` after the first
attempt, then the row is ``failed`` (an operator may redeliver it). An endpoint that has failed
without a success for ``disable_after_days`` is disabled and the operator told (endpoint status
and reason, its log, a WARNING in the service log).

A sender killed after the receiver answered but before the outcome was stored delivers that
notification again once the lease expires: duplicates carry the same notification id.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from application.clock import Clock
from application.notifications.catalog import encode, envelope, notification_type
from application.notifications.ports import (
    ACTIVE,
    DELIVERED,
    DISABLED,
    FAILED,
    PENDING,
    Attempt,
    Claimed,
    Sender,
    SendResult,
    WebhookStore,
)
from application.notifications.queue import decode
from application.notifications.signing import ATTEMPT_HEADER, ID_HEADER, SIGNATURE_HEADER, TYPE_HEADER, signature_header
from application.service import ContractsApplication
from domain.notifications import DeliveryPolicy

log = logging.getLogger("contracts.webhooks")


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    ok: bool
SYSTEM_ACTOR = "webhooks (automatic)"


class Deliverer:
    def __init__(self, app: ContractsApplication, store: WebhookStore, sender: Sender, clock: Clock,
                 policy: DeliveryPolicy, lease_seconds: float = 60.0, user_agent: str = "contracts-webhooks/1") -> None:
        self.app, self.store, self.sender, self.clock, self.policy = app, store, sender, clock, policy
        self.lease = timedelta(seconds=lease_seconds)
        self.user_agent = user_agent
        self._bodies: OrderedDict[tuple[int, bool], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, limit: int) -> list[Claimed]:
        now = self.clock.now()
        return self.store.claim(now, limit, now + self.lease)

    def prefetch(self, claimed: Sequence[Claimed]) -> None:
        """Build the bodies of a claimed batch from one read of the event log when its positions lie
        close together (a month start's notifications do), instead of one read per attempt."""
        wanted = {(c.row.position, False) for c in claimed if not c.personal_data}  # personal: never cached
        positions = sorted({p for p, _ in wanted})
        if len(positions) < 2 or positions[-1] - positions[0] >= min(16 * len(positions), 4096):
            return
        found = self.app.recorder.select_notifications(start=positions[0], limit=positions[-1] - positions[0] + 1,
                                                       stop=positions[-1])
        built: dict[tuple[int, bool], bytes] = {}
        for n in found:
            if (n.id, False) in wanted:
                event = decode(self.app, n)
                kind = notification_type(event)
                if kind is not None:
                    built[(n.id, False)] = encode(envelope(event, n.id, kind, personal=False))
        with self._lock:
            self._bodies.update(built)
            while len(self._bodies) > 1024:
                self._bodies.popitem(last=False)

    def body(self, position: int, personal: bool) -> bytes:
        """The notification of the event at ``position``, encoded (the same bytes on every attempt
        unless its personal fields were erased meanwhile)."""
        key = (position, personal)
        with self._lock:
            cached = self._bodies.get(key)
        if cached is not None:
            return cached
        found = self.app.recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            raise LookupError(f"no event at position {position}")
        event = decode(self.app, found[0], personal=personal)
        kind = notification_type(event)
        if kind is None:
            raise LookupError(f"the event at position {position} has no notification type")
        encoded = encode(envelope(event, position, kind, personal=personal))
        if personal:  # built afresh on every attempt: a contract erased meanwhile sends its fields as erased
            return encoded
        with self._lock:
            self._bodies[key] = encoded
            while len(self._bodies) > 1024:
                self._bodies.popitem(last=False)
        return encoded

    def attempt(self, claimed: Claimed) -> Outcome | None:
        """POST the notification once (``None``: its endpoint has no secret any more; the row is
        released). The endpoint's URL, flag and secrets come with the claim."""
        row, secrets = claimed.row, claimed.secrets
        if secrets is None:  # deleted while the row waited (claims take active endpoints only)
            self.store.release(claimed)
            return None
        started = self.clock.now()
        number = claimed.attempts + 1
        try:
            body = self.body(row.position, claimed.personal_data)
        except LookupError as exc:
            log.error("notification %s: %s", row.notification_id, exc)
            result = SendResult(None, 0, "the event could not be read")
        else:
            timestamp = int(started.timestamp())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": self.user_agent,
                SIGNATURE_HEADER: signature_header(secrets.signing(started), timestamp, body),
                ID_HEADER: str(row.notification_id),
                TYPE_HEADER: row.type,
                ATTEMPT_HEADER: str(number),
            }
            result = self.sender.send(claimed.url, body, headers)
        return Outcome(Attempt(number, started, result.status_code, result.latency_ms, result.error), result.ok)

    def record(self, claimed: Claimed, outcome: Outcome) -> Attempt:
        self.record_many([(claimed, outcome)])
        return outcome.attempt

    def record_many(self, results: Sequence[tuple[Claimed, Outcome]]) -> None:
        """Store the attempts and what follows from each: delivered, retried later, or given up; then
        disable an endpoint that has failed for ``disable_after_days``. One transaction."""
        if not results:
            return
        done = self.clock.now()
        rows: list[tuple[Claimed, Attempt, str, datetime | None]] = []
        for claimed, outcome in results:
            attempt = outcome.attempt
            first = claimed.first_attempt_at or attempt.at
            next_at: datetime | None = None
            if outcome.ok:
                status = DELIVERED
            elif self.policy.gives_up(first, done):
                status = FAILED
                log.warning("notification %s to endpoint %s failed for %s days: given up (redeliver by hand)",
                            claimed.row.notification_id, claimed.row.endpoint_id, self.policy.retry_days,
                            extra={"fields": {"notification_id": str(claimed.row.notification_id),
                                              "endpoint_id": str(claimed.row.endpoint_id), "outcome": "failed"}})
            else:
                status = PENDING
                next_at = self.policy.next_attempt(claimed.failures + 1, done)
            rows.append((claimed, attempt, status, next_at))
        for endpoint_id, failing_since in self.store.finish_many(rows, done).items():
            if failing_since is not None and self.policy.disables(failing_since, done):
                self._disable(endpoint_id, failing_since, done)

    def deliver(self, claimed: Claimed) -> Attempt | None:
        outcome = self.attempt(claimed)
        return None if outcome is None else self.record(claimed, outcome)

    def _disable(self, endpoint_id: uuid.UUID, failing_since: datetime, now: datetime) -> None:
        endpoint = self.store.get_endpoint(endpoint_id)
        if endpoint is None or endpoint.status != ACTIVE:
            return
        reason = (f"every delivery failed since {failing_since.isoformat()} "
                  f"({self.policy.disable_after_days} days, POLICY webhook_disable_after_days)")
        self.store.update_endpoint(replace(endpoint, status=DISABLED, disabled_reason=reason, updated_at=now),
                                   SYSTEM_ACTOR, "disabled", reason)
        log.warning("webhook endpoint %s disabled: %s; enable it once it answers again "
                    "(`contracts webhooks enable`)", endpoint.endpoint_id, reason)

    def deliver_due(self, limit: int = 50) -> int:
        """Claim and deliver due rows one after another (tests, small loads); returns how many."""
        claimed = self.claim(limit)
        for item in claimed:
            self.deliver(item)
        return len(claimed)
