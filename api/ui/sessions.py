"""Browser sessions of the web pages: a random session id in an HttpOnly cookie, mapped in the
API store (the events' database) to the *hash* of the API key that logged in.

Neither the key nor its hash ever reaches the browser or a URL; the cookie holds only a random
256-bit session id, and the database keeps only the session id's SHA-256 (a leaked table gives
no usable cookie). Every request looks the key hash up again in the API store, so revoking the
key (``contracts keys revoke``) ends its sessions at once, and the role is always the key's
current role.

Sessions are rows of the API store (``ui_sessions``), so every API process over the same
database honours them (``contracts serve --workers N`` keeps the pages) and a restart logs
nobody out. 30 minutes idle, 8 hours at most; logout deletes the row; expired rows are deleted
when read and purged at each login.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from application.ports import ApiStore, UiSessionRecord

COOKIE = "contracts_ui"
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=8)
_MAX_ID_LENGTH = 100


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


Session = UiSessionRecord


class SessionStore:
    """Login sessions over the API store, with idle and absolute expiry."""

    def __init__(self, store: ApiStore, idle: timedelta = IDLE_TIMEOUT,
                 absolute: timedelta = ABSOLUTE_TIMEOUT) -> None:
        self.store, self.idle, self.absolute = store, idle, absolute

    def create(self, key_hash: str, now: datetime) -> str:
        """A new session for the key; returns the session id (the cookie value)."""
        self.store.purge_sessions(now - self.idle, now - self.absolute)
        session_id = secrets.token_urlsafe(32)
        self.store.insert_session(_digest(session_id), key_hash, now)
        return session_id

    def get(self, session_id: str | None, now: datetime) -> Session | None:
        """The live session of this id (its idle timer restarted), or None."""
        if not session_id or len(session_id) > _MAX_ID_LENGTH:
            return None
        return self.store.touch_session(_digest(session_id), now, now - self.idle, now - self.absolute)

    def drop(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= _MAX_ID_LENGTH:
            self.store.delete_session(_digest(session_id))

    def __len__(self) -> int:
        return self.store.count_sessions()
