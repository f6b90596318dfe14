"""Webhook endpoints (spec 12): operators register, list, update, disable, delete, roll secrets.

A secret is random (``whsec_`` + 256 bits), returned once by ``register`` and ``roll_secret``
and never again (the store keeps it sealed; logs never see it). Rolling keeps the previous
secret signing for an overlap, so receivers can switch without losing a notification.
"""

from __future__ import annotations

import secrets as random_tokens
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from application.notifications.catalog import TYPE_NAMES
from application.notifications.ports import ACTIVE, ALL_TYPES, DELETED, DISABLED, Endpoint, WebhookStore
from domain.calendar import require_aware
from domain.errors import InvalidInput, NotFound

ARTICLE = "rule book 12"
SECRET_PREFIX = "whsec_"
MAX_URL = 2000
MAX_DESCRIPTION = 500
MAX_OVERLAP = timedelta(days=7)


def new_secret() -> str:
    return SECRET_PREFIX + random_tokens.token_urlsafe(32)


def check_url(url: str) -> str:
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        raise InvalidInput(ARTICLE, f"url must be an http(s) URL with a host (at most {MAX_URL} characters)", "url")
    if parts.username or parts.password:
        raise InvalidInput(ARTICLE, "url must not carry credentials (the signature authenticates the sender)",
                           "url")
    return url.strip()


def check_types(event_types: Sequence[str]) -> tuple[str, ...]:
    if not event_types:
        raise InvalidInput(ARTICLE, f"event_types must name at least one type (or {ALL_TYPES!r})", "event_types")
    unknown = sorted({t for t in event_types if t != ALL_TYPES and t not in TYPE_NAMES})
    if unknown:
        raise InvalidInput(ARTICLE, f"unknown event types {', '.join(unknown)}; known: {', '.join(TYPE_NAMES)}",
                           "event_types")
    return tuple(sorted(set(event_types)))


def check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(ARTICLE, f"description is limited to {MAX_DESCRIPTION} characters", "description")
    return description


class EndpointAdmin:
    """The operator's commands on endpoints; ``last_position`` gives the event stream's head (an
    endpoint receives the notifications recorded after its registration)."""

    def __init__(self, store: WebhookStore, last_position: Callable[[], int]) -> None:
        self.store, self.last_position = store, last_position

    def get(self, endpoint_id: uuid.UUID) -> Endpoint:
        found = self.store.get_endpoint(endpoint_id)
        if found is None or found.status == DELETED:
            raise NotFound(ARTICLE, f"no webhook endpoint {endpoint_id}", "endpoint_id")
        return found

    def register(self, url: str, event_types: Sequence[str], at: datetime, actor: str, *, description: str = "",
                 personal_data: bool = False) -> tuple[Endpoint, str]:
        require_aware(at)
        endpoint = Endpoint(endpoint_id=uuid.uuid4(), url=check_url(url), description=check_description(description),
                            event_types=check_types(event_types), personal_data=bool(personal_data), status=ACTIVE,
                            created_at=at, updated_at=at, created_position=self.last_position())
        secret = new_secret()
        self.store.insert_endpoint(endpoint, secret, actor)
        return endpoint, secret

    def update(self, endpoint_id: uuid.UUID, at: datetime, actor: str, *, url: str | None = None,
               event_types: Sequence[str] | None = None, description: str | None = None,
               personal_data: bool | None = None) -> Endpoint:
        endpoint = self.get(endpoint_id)
        changes: dict[str, object] = {}
        if url is not None:
            changes["url"] = check_url(url)
        if event_types is not None:
            changes["event_types"] = check_types(event_types)
        if description is not None:
            changes["description"] = check_description(description)
        if personal_data is not None:
            changes["personal_data"] = bool(personal_data)
        updated = replace(endpoint, updated_at=require_aware(at), **changes)  # type: ignore[arg-type]
        detail = ", ".join(f"{k}={v}" for k, v in sorted(changes.items()) if k != "url") + (
            ", url changed" if "url" in changes else "")
        self.store.update_endpoint(updated, actor, "updated", detail.strip(", "))
        return updated

    def disable(self, endpoint_id: uuid.UUID, at: datetime, actor: str, reason: str = "disabled by an operator"
                ) -> Endpoint:
        endpoint = self.get(endpoint_id)
        updated = replace(endpoint, status=DISABLED, disabled_reason=reason[:500], updated_at=require_aware(at))
        self.store.update_endpoint(updated, actor, "disabled", reason[:500])
        return updated

    def enable(self, endpoint_id: uuid.UUID, at: datetime, actor: str) -> Endpoint:
        """Delivery resumes with the endpoint's backlog, oldest first; failures count afresh."""
        endpoint = self.get(endpoint_id)
        updated = replace(endpoint, status=ACTIVE, disabled_reason=None, failing_since=None,
                          updated_at=require_aware(at))
        self.store.update_endpoint(updated, actor, "enabled", "")
        return updated

    def delete(self, endpoint_id: uuid.UUID, at: datetime, actor: str) -> None:
        """The endpoint stops receiving; its pending deliveries are cancelled, its log is kept."""
        endpoint = self.get(endpoint_id)
        self.store.update_endpoint(replace(endpoint, status=DELETED, updated_at=require_aware(at)), actor,
                                   "deleted", "")

    def roll_secret(self, endpoint_id: uuid.UUID, overlap: timedelta, at: datetime, actor: str) -> str:
        """A new secret; the current one keeps signing (a second ``v1=``) for ``overlap``."""
        require_aware(at)
        if overlap < timedelta(0) or overlap > MAX_OVERLAP:
            raise InvalidInput(ARTICLE, f"overlap must lie between 0 and {MAX_OVERLAP.days} days", "overlap_seconds")
        self.get(endpoint_id)
        secret = new_secret()
        self.store.roll_secret(endpoint_id, secret, at + overlap if overlap else None, at, actor)
        return secret
