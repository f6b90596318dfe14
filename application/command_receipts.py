"""Command receipts: exactly-once commands across crashes.

An HTTP retry carries an Idempotency-Key. The API stores the response of a finished request,
but a process can die after the command's events are committed and before the response is
stored. A ``CommandReceipt`` closes that window: it is an aggregate whose id is derived from
the key, saved in the SAME transaction as the command's events. If the command committed,
the receipt exists (the retry is answered from it); if a retry runs the command again, the
receipt's first event collides and the whole transaction is refused, so nothing is stored
twice.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from eventsourcing.domain import Aggregate, event

RECEIPT_NAMESPACE = uuid.UUID("9d4b1f0e-3c2a-4e7b-8f61-0a5c2d9e7b34")
_current: ContextVar[str | None] = ContextVar("command_receipt_key", default=None)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def receipt_id(key: str) -> uuid.UUID:
    return CommandReceipt.create_id(_digest(key))


class CommandReceipt(Aggregate):
    """Proof that the command with this key was applied (the key itself is stored only as a digest)."""

    @staticmethod
    def create_id(key_digest: str) -> uuid.UUID:
        return uuid.uuid5(RECEIPT_NAMESPACE, key_digest)

    @event("CommandApplied")
    def __init__(self, key_digest: str, aggregate_id: uuid.UUID, applied_version: int) -> None:
        self.key_digest, self.aggregate_id, self.applied_version = key_digest, aggregate_id, applied_version


def new_receipt(key: str, aggregate_id: uuid.UUID, version: int) -> CommandReceipt:
    return CommandReceipt(key_digest=_digest(key), aggregate_id=aggregate_id, applied_version=version)


def current_key() -> str | None:
    return _current.get()


@contextmanager
def receipt_scope(key: str) -> Iterator[None]:
    """Commands run inside this scope save a receipt for ``key`` with their events."""
    token = _current.set(key)
    try:
        yield
    finally:
        _current.reset(token)
