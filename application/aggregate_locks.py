"""One lock per cached aggregate in this process (issue 21: commands without a private copy).

A contract command holds its contract's lock from the load to the commit and works on the cached
object itself; every other use of a cached aggregate (a read and its private copy, the library's
fast-forward, which mutates the cached object in place, a put after a commit) holds the same lock,
so nobody sees a command half-applied. A command that fails evicts what it touched. Across
processes nothing changes: a stale cached state is refused by the store (a conflict on save) and
the command runs again on the stored events.

Nobody waits for a lock longer than ``AggregateLocks.wait`` (``LOCK_WAIT``): a command that holds
it for long (its write retried while the database is down) makes the others read the aggregate
from the store, past the cache, as if it were not cached (a command then meets the holder's write,
if any, as a conflict in the store, as between processes).

The locks are re-entrant (a command's own read of its contract) and exist only while held or
waited for: no table grows with the number of aggregates.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Repository

LOCK_WAIT = 0.5  # seconds; commands hold a lock for a few milliseconds (a load, a decision, one write)


def fold(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's ``project_aggregate`` (each event's ``mutate`` in turn) without its runtime
    ``Protocol`` check per event (issue 21, as ``application.service._Collected``): the events come
    from the application's mapper, every one a domain event of the library's classes."""
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class _Held:
    __slots__ = ("locks", "aggregate_id", "entry", "acquired")

    def __init__(self, locks: AggregateLocks, aggregate_id: uuid.UUID) -> None:
        self.locks, self.aggregate_id = locks, aggregate_id
        self.entry: list[Any] = []
        self.acquired = False

    def __enter__(self) -> bool:
        """Whether the lock was acquired within ``locks.wait``."""
        locks = self.locks
        with locks.guard:
            entry = locks.entries.get(self.aggregate_id)
            if entry is None:
                entry = locks.entries[self.aggregate_id] = [threading.RLock(), 0]
            entry[1] += 1
        self.entry = entry
        self.acquired = entry[0].acquire(True, locks.wait)
        if not self.acquired:
            self._leave()
        return self.acquired

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.acquired:
            self.entry[0].release()
            self._leave()

    def _leave(self) -> None:
        locks = self.locks
        with locks.guard:
            self.entry[1] -= 1
            if self.entry[1] == 0:
                del locks.entries[self.aggregate_id]


class AggregateLocks:
    """``with locks.hold(aggregate_id) as held:`` the aggregate's re-entrant lock, made on first use;
    ``held`` is False when it was not free within ``wait`` seconds."""

    def __init__(self, wait: float = LOCK_WAIT) -> None:
        self.wait = wait
        self.guard = threading.Lock()
        self.entries: dict[uuid.UUID, list[Any]] = {}  # id -> [RLock, holders and waiters]

    def hold(self, aggregate_id: uuid.UUID) -> _Held:
        return _Held(self, aggregate_id)


class LockedRepository(Repository[uuid.UUID]):
    """The library's repository whose reads of the cache (and fast-forwards of a cached aggregate,
    and the deep copy it hands out) hold the aggregate's lock (``AggregateLocks``); when the lock is
    not free in time, the aggregate is read from the store past the cache."""

    locks: AggregateLocks

    @classmethod
    def adopt(cls, repository: Repository[uuid.UUID]) -> LockedRepository:
        """``repository`` (the library's, as ``Application.construct_repository`` made it from the
        settings), its state kept, with the locks."""
        locked = object.__new__(cls)
        locked.__dict__.update(vars(repository))
        locked.locks = AggregateLocks()
        return locked

    def get(self, aggregate_id: uuid.UUID, *, version: int | None = None, **kwargs: Any) -> Any:
        if self.cache is None or version is not None:
            return super().get(aggregate_id, version=version, **kwargs)
        with self.locks.hold(aggregate_id) as held:
            if held:
                return super().get(aggregate_id, **kwargs)
        aggregate = kwargs.get("projector_func", fold)(None, self.event_store.get(aggregate_id))
        if aggregate is None:
            raise AggregateNotFoundError(aggregate_id)
        return aggregate
