"""Command receipts: exactly-once commands across crashes.

An HTTP retry carries an Idempotency-Key. The API stores the response of a finished request,
but a process can die after the command's events are committed and before the response is
stored. A ``CommandReceipt`` closes that window: it is an aggregate whose id is derived from
the key, saved in the SAME transaction as the command's events. If the command committed,
the receipt exists (the retry is answered from it); if a retry runs the command again, the
receipt's first event collides and the whole transaction is refused, so nothing is stored
twice.

The receipt also records the request's fingerprint (a SHA-256 of method, path, canonical body
and If-Match, as the API computes it). It outlives the API's own key record (kept 24 h), so a
key is never half-forgotten: a later request with the same key and the same fingerprint is
answered from the receipt, one with another fingerprint is refused (the key is remembered
with its request), never silently answered as done (issue 14 item 2). Receipts stored before
the fingerprint existed read with an empty fingerprint, which matches no request.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from eventsourcing.domain import Aggregate, event

RECEIPT_NAMESPACE = uuid.UUID("9d4b1f0e-3c2a-4e7b-8f61-0a5c2d9e7b34")


@dataclass(frozen=True)
class ReceiptScope:
    """The key a command runs under and the fingerprint of the request that carries it."""

    key: str
    request_hash: str


_current: ContextVar[ReceiptScope | None] = ContextVar("command_receipt_scope", default=None)


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
    def __init__(self, key_digest: str, aggregate_id: uuid.UUID, applied_version: int,
                 request_hash: str = "") -> None:
        # request_hash defaults to "" for receipts stored before it was recorded
        self.key_digest, self.aggregate_id, self.applied_version = key_digest, aggregate_id, applied_version
        self.request_hash = request_hash

    def same_request(self, request_hash: str) -> bool:
        """True only for the request whose fingerprint this receipt recorded."""
        return bool(self.request_hash) and self.request_hash == request_hash


def new_receipt(scope: ReceiptScope, aggregate_id: uuid.UUID, version: int) -> CommandReceipt:
    return CommandReceipt(key_digest=_digest(scope.key), aggregate_id=aggregate_id, applied_version=version,
                          request_hash=scope.request_hash)


def current_scope() -> ReceiptScope | None:
    return _current.get()


@contextmanager
def receipt_scope(key: str, request_hash: str) -> Iterator[None]:
    """Commands run inside this scope save a receipt for ``key`` (and the request's fingerprint)
    with their events."""
    token = _current.set(ReceiptScope(key, request_hash))
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def outside_receipt_scope() -> Iterator[None]:
    """A follow-up transaction of a command (rule book 7: the credit applied after an invoice was
    issued) saves no receipt: the receipt went with the command's own transaction."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)
