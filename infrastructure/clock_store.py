"""The sandbox service clock, persisted in the database (table ``service_clock``).

In sandbox mode (``CONTRACTS_MODE=sandbox``) every process of a deployment (API, scheduler,
projection runners) reads business time from one row, so a client can walk contracts through
months the way a test clock does. Like a test clock it is frozen: it stays where it was set
and only moves forward (moving back would let later events claim earlier business times).
Until it is first set it reads the system clock.

Production mode never builds one: it uses ``application.clock.SystemClock``.
"""

from __future__ import annotations

from datetime import datetime

from application.clock import Clock, SystemClock
from application.ports import ApiStore
from domain.errors import RuleViolation

SANDBOX_RULE = "sandbox clock"


class DatabaseClock:
    """``application.clock.Clock`` backed by the ``service_clock`` row."""

    def __init__(self, store: ApiStore, fallback: Clock | None = None) -> None:
        self.store = store
        self.fallback = fallback or SystemClock()

    def now(self) -> datetime:
        stored = self.store.get_clock()
        return stored if stored is not None else self.fallback.now()

    def is_set(self) -> bool:
        return self.store.get_clock() is not None

    def set(self, to: datetime) -> datetime:
        """Move the clock to ``to``; refuses to move it back (``RuleViolation``)."""
        if to.tzinfo is None or to.utcoffset() is None:
            raise ValueError("the sandbox clock takes timezone-aware instants")
        current = self.store.advance_clock(to, SystemClock().now())
        if current != to:
            raise RuleViolation(SANDBOX_RULE, f"the sandbox clock only moves forward; it is at "
                                f"{current.isoformat()}", "now")
        return current
