"""A stored event that no longer decodes (issue 14, item 4).

A flipped bit in a sealed personal field, JSON cut short, an unknown topic: the stored bytes of
one event cannot be turned back into a domain event. That must damage nothing else. Every
reader decodes through ``decode_event``, which raises ``UndecodableEvent`` naming the event (its
aggregate, version, topic and, where the reader knows it, its position) and a reason made of
the failure's kind only, never of the stored bytes. The readers then decide:

- the global feed marks the event as undecodable and goes on (``api.routes.feeds``);
- ``audit.verify_chain`` reports it as a broken link with its position;
- the projections record it and stop that aggregate only (``application.projections``);
- a read or command of that one aggregate is refused with a problem naming the event.
"""

from __future__ import annotations

import binascii
import json
import uuid
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import TopicError


class UndecodableEvent(Exception):
    """The stored event ``(aggregate_id, version)`` cannot be decoded; ``reason`` says how."""

    def __init__(self, aggregate_id: uuid.UUID | str, version: int, topic: str, reason: str,
                 position: int | None = None) -> None:
        self.aggregate_id = aggregate_id if isinstance(aggregate_id, uuid.UUID) else _uuid(aggregate_id)
        self.version, self.topic, self.reason, self.position = int(version), topic, reason, position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"event version {self.version} of aggregate {self.aggregate_id}{where} cannot be "
                         f"decoded: {reason}")

    @property
    def event_name(self) -> str:
        return self.topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]

    def at(self, position: int) -> UndecodableEvent:
        """The same failure, with the notification position the reader knows."""
        return UndecodableEvent(self.aggregate_id, self.version, self.topic, self.reason, position)

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "aggregate_id": str(self.aggregate_id), "version": self.version,
                "event": self.event_name, "reason": self.reason}


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return uuid.UUID(int=0)


def reason_of(exc: BaseException) -> str:
    """What went wrong, from the exception's kind (never its text: it may quote stored bytes)."""
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if isinstance(root, UndecodableEvent):
        return root.reason
    if isinstance(root, json.JSONDecodeError):
        return "the stored state is not valid JSON (cut short or altered)"
    if isinstance(root, UnicodeDecodeError):
        return "the stored state is not valid UTF-8 (altered bytes)"
    if isinstance(root, TopicError):
        return "the event's topic names no known event class"
    if isinstance(root, binascii.Error):
        return "a sealed field is not valid base64 (altered)"
    return f"decoding failed ({type(root).__name__})"


def decode_event(mapper: Mapper[Any], stored: StoredEvent, *, position: int | None = None,
                 open_sealed: bool = True) -> Any:
    """``mapper.to_domain_event(stored)``, raising ``UndecodableEvent`` when it fails.

    ``open_sealed=False`` uses the library's decoding only (personal fields stay sealed: the
    projections never read them)."""
    try:
        if open_sealed:
            return mapper.to_domain_event(stored)
        return Mapper.to_domain_event(mapper, stored)
    except UndecodableEvent as exc:
        raise (exc if position is None else exc.at(position)) from None
    except Exception as exc:  # noqa: BLE001 - any failure of the stored bytes is the same fault
        raise UndecodableEvent(stored.originator_id, stored.originator_version, stored.topic, reason_of(exc),
                               position) from None
