"""Browser sessions of the web pages: a random session id in an HttpOnly cookie, mapped on the
server to the *hash* of the API key that logged in.

Neither the key nor its hash ever reaches the browser or a URL; the cookie holds only a random
256-bit session id, and the server keeps only the session id's SHA-256 (a leaked memory dump
gives no usable cookie). Every request looks the key hash up again in the API store, so revoking
the key (``contracts keys revoke``) ends its sessions at once, and the role is always the key's
current role.

Sessions live in the memory of the API process: a restart logs everybody out, which is harmless
for a read-only page (log in again with the key). Running several API processes behind one
address would need sticky sessions or a table in the API store (not done: ``contracts serve``
is one process).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "contracts_ui"
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=8)
MAX_SESSIONS = 10_000


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass
class Session:
    key_hash: str
    created_at: datetime
    last_seen: datetime


class SessionStore:
    """Thread-safe (routes run in the thread pool), bounded, with idle and absolute expiry."""

    def __init__(self, idle: timedelta = IDLE_TIMEOUT, absolute: timedelta = ABSOLUTE_TIMEOUT,
                 max_sessions: int = MAX_SESSIONS) -> None:
        self.idle, self.absolute, self.max_sessions = idle, absolute, max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, key_hash: str, now: datetime) -> str:
        """A new session for the key; returns the session id (the cookie value)."""
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._purge(now)
            while len(self._sessions) >= self.max_sessions:  # drop the oldest
                oldest = min(self._sessions, key=lambda k: self._sessions[k].last_seen)
                del self._sessions[oldest]
            self._sessions[_digest(session_id)] = Session(key_hash, now, now)
        return session_id

    def get(self, session_id: str | None, now: datetime) -> Session | None:
        """The live session of this id (its idle timer restarted), or None."""
        if not session_id or len(session_id) > 100:
            return None
        digest = _digest(session_id)
        with self._lock:
            session = self._sessions.get(digest)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[digest]
                return None
            session.last_seen = now
            return session

    def drop(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_digest(session_id), None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, session: Session, now: datetime) -> bool:
        return now - session.last_seen > self.idle or now - session.created_at > self.absolute

    def _purge(self, now: datetime) -> None:
        for digest in [d for d, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[digest]
