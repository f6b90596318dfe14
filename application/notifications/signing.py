"""Signatures of notifications: Stripe's scheme (HMAC-SHA256 over ``"{t}.{body}"``).

Header ``Contracts-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]``: one ``v1`` per secret
that is valid at sending time (two while a rolled secret's overlap lasts). The key is the whole
secret string (``whsec_...``) as UTF-8, as in Stripe's libraries. ``verify`` is the receiver's
side of docs/webhooks.md, for Python receivers and this service's own tests of the sender.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_HEADER = "Contracts-Signature"
ID_HEADER = "Contracts-Notification-Id"
TYPE_HEADER = "Contracts-Notification-Type"
ATTEMPT_HEADER = "Contracts-Delivery-Attempt"
TOLERANCE_SECONDS = 300  # what receivers should accept: 5 minutes between t= and their clock


class SignatureError(ValueError):
    """The header is malformed, too old or too new, or no signature matches."""


def compute(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    if not secrets:
        raise ValueError("at least one secret signs")
    return ",".join([f"t={timestamp}", *(f"v1={compute(s, timestamp, body)}" for s in secrets)])


def verify(header: str, body: bytes, secret: str, now: int, tolerance: int = TOLERANCE_SECONDS) -> int:
    """Check ``header`` for ``body`` with ``secret`` at unix time ``now``; returns the timestamp."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("no t= timestamp or no v1= signature")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance")
    expected = compute(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureError("no signature matches")
    return timestamp
