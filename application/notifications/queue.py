"""The delivery queue, derived from the event stream exactly once (spec 12).

Like the projections (``infrastructure.read_side``): a batch of the notification log becomes
queue rows (one per notification and subscribed endpoint), written with the tracking position
in one transaction, after checking that the stored position is the batch's start. A crash, even
``kill -9``, loses nothing and queues nothing twice; a second deriver's batch is refused
(``StalePosition``) and recomputed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import get_topic

from application.clock import Clock
from application.notifications.catalog import (
    NOTIFICATION_TYPES,
    contract_of,
    notification_id,
    notification_type,
    service_of,
)
from application.notifications.ports import DELETED, Endpoint, QueueRow, WebhookStore
from application.service import ContractsApplication

TOPICS = frozenset(get_topic(cls) for cls in NOTIFICATION_TYPES)  # the only events worth decoding


def decode(app: ContractsApplication, notification: Notification, *, personal: bool = False) -> Any:
    """The event of ``notification``; personal fields opened only when ``personal`` (the base
    ``Mapper`` leaves them sealed, and costs no key read)."""
    if personal:
        return app.mapper.to_domain_event(notification)
    return Mapper.to_domain_event(app.mapper, notification)


def rows_for(app: ContractsApplication, notifications: Iterable[Notification], endpoints: Sequence[Endpoint],
             *, respect_registration: bool = True) -> list[QueueRow]:
    rows: list[QueueRow] = []
    for n in notifications:
        if n.topic not in TOPICS:
            continue
        event = decode(app, n)
        kind = notification_type(event)
        if kind is None:
            continue
        wanted = [e for e in endpoints if e.wants(kind.name)
                  and (not respect_registration or n.id > e.created_position)]
        if not wanted:
            continue
        nid = notification_id(event, kind)
        contract = contract_of(event)
        service = service_of(event)
        aggregate = uuid.UUID(str(event.originator_id))
        for endpoint in wanted:
            rows.append(QueueRow(endpoint.endpoint_id, nid, n.id, kind.name, kind.version, aggregate, contract,
                                 service, event.timestamp))
    return rows


class QueueDeriver:
    def __init__(self, app: ContractsApplication, store: WebhookStore, clock: Clock, batch_size: int = 500) -> None:
        self.app, self.store, self.clock, self.batch_size = app, store, clock, batch_size
        self._position: int | None = None  # the committed position as far as this deriver knows

    def run_once(self) -> int:
        """Derive the next batch; returns how many events it covered (0: caught up)."""
        start = self._position if self._position is not None else self.store.position()
        notifications = self.app.recorder.select_notifications(start=start + 1, limit=self.batch_size)
        if not notifications:
            self._position = start
            return 0
        endpoints = [e for e in self.store.list_endpoints() if e.status != DELETED]
        rows = rows_for(self.app, notifications, endpoints) if endpoints else []
        try:
            self.store.enqueue(rows, start, notifications[-1].id, self.clock.now())
        except BaseException:
            self._position = None  # another deriver moved on, or the database failed: re-read
            raise
        self._position = notifications[-1].id
        return len(notifications)

    def catch_up(self) -> int:
        total = 0
        while n := self.run_once():
            total += n
        return total

    def behind(self) -> int:
        last = self.app.recorder.max_notification_id() or 0
        return max(0, last - self.store.position())
