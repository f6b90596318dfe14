"""What the entry points (HTTP, command line) use: endpoints, delivery records, redelivery and
the notices a contract was given (Art. 9.5, 18, 28)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from application.clock import Clock
from application.notifications.catalog import ALL_TYPES, NOTICE_TYPES, instant
from application.notifications.endpoints import ARTICLE, EndpointAdmin
from application.notifications.ports import DELIVERED, Delivery, WebhookStore
from application.notifications.queue import QueueDeriver, rows_for
from application.service import ContractsApplication
from domain.contract import Contract
from domain.errors import InvalidInput, NotFound

MAX_REDELIVERY_RANGE = 100_000  # positions per request: bounded work


@dataclass
class Webhooks:
    app: ContractsApplication
    store: WebhookStore
    admin: EndpointAdmin
    deriver: QueueDeriver
    clock: Clock  # wall-clock time: retries and signatures concern the receivers' clocks

    def delivery(self, endpoint_id: uuid.UUID, notification_id: uuid.UUID) -> Delivery:
        self.admin.get(endpoint_id)
        found = self.store.delivery(endpoint_id, notification_id)
        if found is None:
            raise NotFound(ARTICLE, f"no notification {notification_id} for endpoint {endpoint_id}",
                           "notification_id")
        return found

    def redeliver(self, endpoint_id: uuid.UUID, now: datetime, *, notification_id: uuid.UUID | None = None,
                  from_position: int | None = None, to_position: int | None = None) -> int:
        """Queue one notification again, or every notification of the endpoint's types in a position
        range (also those recorded before it was registered or while it wanted other types)."""
        endpoint = self.admin.get(endpoint_id)
        if notification_id is not None:
            if from_position is not None or to_position is not None:
                raise InvalidInput(ARTICLE, "give notification_id or a position range, not both", "notification_id")
            self.delivery(endpoint_id, notification_id)
            return self.store.redeliver(endpoint_id, [notification_id], None, now)
        if from_position is None or to_position is None:
            raise InvalidInput(ARTICLE, "give notification_id, or from_position and to_position", "from_position")
        if from_position < 1 or to_position < from_position:
            raise InvalidInput(ARTICLE, "from_position must be at least 1 and at most to_position", "to_position")
        if to_position - from_position >= MAX_REDELIVERY_RANGE:
            raise InvalidInput(ARTICLE, f"a range covers at most {MAX_REDELIVERY_RANGE} positions", "to_position")
        last = min(to_position, self.store.position())  # beyond that the deriver queues them anyway
        start = from_position
        while start <= last:
            batch = self.app.recorder.select_notifications(start=start, limit=1000, stop=last)
            if not batch:
                break
            self.store.add_rows(rows_for(self.app, batch, [endpoint], respect_registration=False), now)
            start = batch[-1].id + 1
        return self.store.redeliver(endpoint_id, None, (from_position, to_position), now)

    def notices(self, contract: Contract) -> list[dict[str, Any]]:
        """When the notices the terms require reached each endpoint, for one contract."""
        found = self.store.notices(contract.id, contract.service, contract.created_on, list(NOTICE_TYPES))
        return [notice_view(d) for d in found]

    def notices_at_version(self, contract_id: uuid.UUID, service: str, created_on: datetime
                           ) -> tuple[int | None, list[dict[str, Any]]]:
        """The contract's stored version (None: no such contract) and its notices (``notices``), read
        together: one round trip where the store can (what a GET checks its kept view against and
        adds to it; ``service`` and ``created_on`` are fixed when a contract opens)."""
        types = list(NOTICE_TYPES)
        found = self.store.notices_at_version(contract_id, service, created_on, types)
        if found is None:
            version = self.app.stored_version(contract_id)
            found = version, self.store.notices(contract_id, service, created_on, types)
        return found[0], [notice_view(d) for d in found[1]]


def notice_view(d: Delivery) -> dict[str, Any]:
    return {
        "article": NOTICE_TYPES.get(d.row.type),
        "type": d.row.type,
        "notification_id": str(d.row.notification_id),
        "position": d.row.position,
        "endpoint_id": str(d.row.endpoint_id),
        "status": d.status,
        "delivered": d.status == DELIVERED,
        "delivered_at": _instant(d.delivered_at),
        "attempts": d.attempts,
    }


def delivery_view(d: Delivery, *, history: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "notification_id": str(d.row.notification_id),
        "endpoint_id": str(d.row.endpoint_id),
        "type": d.row.type,
        "version": d.row.version,
        "position": d.row.position,
        "aggregate_id": str(d.row.ordering_key),
        "contract_id": None if d.row.contract_id is None else str(d.row.contract_id),
        "occurred_at": _instant(d.row.occurred_at),
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": _instant(d.next_attempt_at),
        "delivered_at": _instant(d.delivered_at),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
    }
    if history:
        view["history"] = [{"attempt": a.attempt, "at": _instant(a.at), "status_code": a.status_code,
                            "latency_ms": a.latency_ms, "error": a.error} for a in d.history]
    return view


def _instant(value: datetime | None) -> str | None:
    return None if value is None else instant(value)


def types_view() -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for kind in ALL_TYPES:
        seen.setdefault(kind.name, {"type": kind.name, "version": kind.version, "article": kind.article,
                                    "personal_fields": list(kind.personal), "description": kind.description})
    return [seen[k] for k in sorted(seen)]


def endpoint_view(e: Any) -> dict[str, Any]:
    return {
        "endpoint_id": str(e.endpoint_id),
        "url": e.url,
        "description": e.description,
        "event_types": list(e.event_types),
        "personal_data": e.personal_data,
        "status": e.status,
        "disabled_reason": e.disabled_reason,
        "failing_since": _instant(e.failing_since),
        "previous_secret_expires_at": _instant(e.previous_secret_expires_at),
        "created_at": _instant(e.created_at),
        "updated_at": _instant(e.updated_at),
        "created_position": e.created_position,
    }
