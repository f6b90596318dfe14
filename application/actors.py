"""Who caused an event (rule book section 13: every event records its actor).

The actor is not a fact of the domain rule that produced the event, so the domain methods do not
take it; the application stamps it on every pending event just before it is stored, and it is
then part of the stored (hash-chained) event state under ``actor``. The entry points say who is
acting: the HTTP API the API key's name and role (``acting_as``), the scheduler the deadline it
fires, the command line the operator's command. Events stored before actors were recorded read
as ``None`` (``actor_of``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import Any

from eventsourcing.domain import Aggregate

ACTOR_FIELD = "actor"

API_KEY, SCHEDULER, OPERATOR, SYSTEM = "api_key", "scheduler", "operator", "system"


@dataclass(frozen=True)
class Actor:
    """``kind``: ``api_key`` (name and role of the key), ``scheduler`` (the deadline it fired,
    ``deadline`` = ``"<kind> <due date>"``), ``operator`` (a command-line operator) or ``system``
    (the application called directly: the demo, tools and tests)."""

    kind: str
    name: str
    role: str | None = None
    deadline: str | None = None

    @classmethod
    def api_key(cls, name: str, role: str) -> Actor:
        return cls(API_KEY, name, role)

    @classmethod
    def scheduler(cls, kind: str, due_on: date) -> Actor:
        return cls(SCHEDULER, "scheduler", deadline=f"{kind} {due_on.isoformat()}")

    @classmethod
    def operator(cls, name: str) -> Actor:
        return cls(OPERATOR, name, "operator")

    def as_dict(self) -> dict[str, str]:
        data = {"kind": self.kind, "name": self.name}
        if self.role is not None:
            data["role"] = self.role
        if self.deadline is not None:
            data["deadline"] = self.deadline
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actor:
        return cls(str(data["kind"]), str(data["name"]), data.get("role"), data.get("deadline"))

    def describe(self) -> str:
        """One line for people: ``billing-system (billing)``, ``scheduler: month_start 2026-05-01``."""
        if self.kind == SCHEDULER:
            return f"scheduler: {self.deadline}" if self.deadline else "scheduler"
        return f"{self.name} ({self.role})" if self.role else self.name


DIRECT = Actor(SYSTEM, "application")
_current: ContextVar[Actor] = ContextVar("actor", default=DIRECT)


def current_actor() -> Actor:
    return _current.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Events stored inside this scope record ``actor`` (unless already stamped)."""
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def stamp(aggregate: Aggregate, actor: Actor | None = None) -> None:
    """Record ``actor`` (default: the current one) on each of the aggregate's pending events that
    has none yet. Events are frozen dataclasses; the attribute is set the way the library's mapper
    restores state (it is ignored when the event is applied: the library passes an event's
    method only the parameters it declares)."""
    recorded = (actor or current_actor()).as_dict()
    for pending in aggregate.pending_events:
        if ACTOR_FIELD not in vars(pending):
            object.__setattr__(pending, ACTOR_FIELD, dict(recorded))


def actor_of(event: object) -> Actor | None:
    """The actor an event recorded, or ``None`` for events stored before actors were recorded."""
    data = vars(event).get(ACTOR_FIELD)
    return Actor.from_dict(data) if isinstance(data, Mapping) else None
