"""One lock per cached aggregate in this process (issue 21: commands without a private copy).

A contract command holds its contract's lock from the load to the commit and works on the cached
object itself; every other use of a cached aggregate (a read and its private copy, the library's
fast-forward, which mutates the cached object in place, a put after a commit) holds the same lock,
so nobody sees a command half-applied. A command that fails evicts what it touched. Across
processes nothing changes: a stale cached state is refused by the store (a conflict on save) and
the command runs again on the stored events.

The locks are re-entrant (a command's own read of its contract) and exist only while held or
waited for: no table grows with the number of aggregates.
"""

from __future__ import annotations

import threading
import uuid
from types import TracebackType
from typing import Any

from eventsourcing.application import Repository


class _Held:
    __slots__ = ("locks", "aggregate_id", "entry")

    def __init__(self, locks: AggregateLocks, aggregate_id: uuid.UUID) -> None:
        self.locks, self.aggregate_id = locks, aggregate_id
        self.entry: list[Any] = []

    def __enter__(self) -> None:
        locks = self.locks
        with locks.guard:
            entry = locks.entries.get(self.aggregate_id)
            if entry is None:
                entry = locks.entries[self.aggregate_id] = [threading.RLock(), 0]
            entry[1] += 1
        self.entry = entry
        entry[0].acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        entry = self.entry
        entry[0].release()
        locks = self.locks
        with locks.guard:
            entry[1] -= 1
            if entry[1] == 0:
                del locks.entries[self.aggregate_id]


class AggregateLocks:
    """``with locks.hold(aggregate_id):`` the aggregate's re-entrant lock, made on first use."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.entries: dict[uuid.UUID, list[Any]] = {}  # id -> [RLock, holders and waiters]

    def hold(self, aggregate_id: uuid.UUID) -> _Held:
        return _Held(self, aggregate_id)


class LockedRepository(Repository[uuid.UUID]):
    """The library's repository whose reads of the cache (and fast-forwards of a cached aggregate,
    and the deep copy it hands out) hold the aggregate's lock (``AggregateLocks``)."""

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
        with self.locks.hold(aggregate_id):
            return super().get(aggregate_id, **kwargs)
