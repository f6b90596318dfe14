"""API keys and the role vocabulary (who may do what); the HTTP check is ``api.auth``.

Keys are random tokens (``ck_`` + 32 random bytes) shown once at creation; the store keeps only
their SHA-256 (see ``api.auth`` for why a fast hash suffices for a 256-bit random key).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from application.ports import ApiStore

BILLING, AUDITOR, OPERATOR = "billing", "auditor", "operator"
ROLES = (BILLING, AUDITOR, OPERATOR)
READERS = (BILLING, AUDITOR, OPERATOR)
WRITERS = (BILLING, OPERATOR)
OPERATORS = (OPERATOR,)
KEY_PREFIX = "ck_"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(store: ApiStore, role: str, name: str, now: datetime) -> str:
    """Store a new key's hash and return the key itself (the only time it is visible)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name or len(name) > 100:
        raise ValueError("name is required (at most 100 characters)")
    key = generate_key()
    store.insert_key(hash_key(key), role, name, now)
    return key
