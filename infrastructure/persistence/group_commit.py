"""Group commit for the PostgreSQL application recorder (issue 7: the write-path lever).

The library's recorder runs every ``insert_events`` call in its own transaction and takes
``LOCK TABLE ... IN EXCLUSIVE MODE`` in it, so that commit order equals notification id
order (projections tailing the log never skip an event). Concurrent writers therefore queue
on the lock, and each pays its own commit (WAL flush) and round trips.

``GroupCommitPostgresApplicationRecorder`` keeps that guarantee and combines concurrent
calls of one process into ONE call of the chained recorder's ``insert_events``:

* ``insert_events`` enqueues the request and waits; the first waiting caller becomes the
  leader (one at a time, a thread-safe combiner), takes up to ``max_batch`` waiting requests
  and stores all their events with one call of the chained recorder's ``insert_events`` (one
  statement in one transaction, ``postgres_recorder``'s database function: ``LOCK TABLE`` and
  ``NOTIFY`` once, the chain hashes and the events of every request), then hands each request
  its own slice of the notification ids.
* each waiting caller sleeps on a lock of its own and is woken exactly once: by the leader
  that ran its request, or, as the next leader, by the leader before it (the first request
  still queued when the leader's own request is done).
* the lock is held from before the first id is handed out until the one commit: commit order
  is still id order.
* a batch that fails for one request's sake (an ``IntegrityError``: a concurrent write of the
  same aggregate version; a broken chain; anything but a lost connection) is run again
  carefully: each request alone, in order, through the same library call, so the failing
  request gets its own exception and its batch-mates commit.
* lost connections: the library's ``@retry`` on ``insert_events`` retries the whole batch (and
  translates psycopg's errors to the library's); when it gives up, every request of the batch
  gets that error.

Calls with no events or with keyword arguments set (a process recorder's ``tracking``) take
the ordinary path.

Settings: ``PG_GROUP_COMMIT`` (looked up as ``CONTRACTS_PG_GROUP_COMMIT``; default on),
``PG_GROUP_COMMIT_MAX_BATCH`` (64), ``PG_GROUP_COMMIT_LINGER_MS`` (0: no waiting for company,
batches form from whoever queued while the previous batch ran).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import eventsourcing.postgres as es_pg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent

from infrastructure.persistence.pool_health import DatabaseUnavailable
from infrastructure.persistence.postgres_recorder import ChainedPostgresApplicationRecorder
from infrastructure.personal_data import PostgresKeyStore

DEFAULT_MAX_BATCH = 64
_LOST = (InterfaceError, OperationalError, DatabaseUnavailable)  # after the library's retries: the whole batch fails


class _Request:
    """One caller's events; ``wake`` is held until the caller may go on: its request is done, or it
    is made the leader (``done`` still False)."""

    __slots__ = ("events", "done", "ids", "error", "wake")

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
        self.done = False
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None
        self.wake = threading.Lock()
        self.wake.acquire()


class GroupCommitPostgresApplicationRecorder(ChainedPostgresApplicationRecorder):
    def __init__(self, datastore: es_pg.PostgresDatastore, *, events_table_name: str = "stored_events",
                 keys: PostgresKeyStore | None = None, max_batch: int = DEFAULT_MAX_BATCH,
                 linger: float = 0.0) -> None:
        super().__init__(datastore, events_table_name=events_table_name, keys=keys)
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self.linger = linger
        self._queue: deque[_Request] = deque()
        self._mutex = threading.Lock()  # guards _queue and _leading
        self._leading = False
        # counters (benchmarks, tests): batches run, requests committed, careful re-runs
        self.batches = 0
        self.requests = 0
        self.careful_runs = 0

    # -- the combiner ------------------------------------------------------------------------
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Each waiting caller sleeps on its own lock and is woken once (issue 21: one
        ``Condition`` woke every waiter after every batch, twice): by the leader that ran its
        request, or by the leader before it handing over the lead."""
        if not stored_events or any(value is not None for value in kwargs.values()):
            return super().insert_events(stored_events, **kwargs)  # ``tracking=None`` is what ``save`` passes
        request = _Request(stored_events)
        with self._mutex:
            self._queue.append(request)
            lead = not self._leading
            self._leading = True
        if not lead:
            request.wake.acquire()
        if not request.done:
            self._lead(request)
        if request.error is not None:
            raise request.error
        return request.ids

    def _lead(self, own: _Request) -> None:
        """Run batches until our own request is done, then hand the lead to the first request still
        queued (woken alone), or give it up when none is."""
        batch: list[_Request] = []
        try:
            while not own.done:
                if self.linger > 0:
                    time.sleep(self.linger)
                with self._mutex:
                    queue = self._queue
                    batch = [queue.popleft() for _ in range(min(self.max_batch, len(queue)))]
                if batch:
                    self._run(batch)
                    self._wake(batch, own)
                    batch = []
        finally:
            if batch:  # _run raised (not an Exception): its requests were marked done
                self._wake(batch, own)
            with self._mutex:
                if not own.done and own in self._queue:  # interrupted before its turn: not stored
                    self._queue.remove(own)
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            if successor is not None:
                successor.wake.release()

    @staticmethod
    def _wake(batch: list[_Request], own: _Request) -> None:
        for request in batch:
            if request is not own:
                request.wake.release()

    def _run(self, batch: list[_Request]) -> None:
        """Execute ``batch``; every request ends done, with ids or its own error."""
        try:
            self._execute(batch)
        except BaseException as exc:  # the whole batch failed (e.g. the database is gone)
            for request in batch:
                if not request.done:
                    request.error, request.done = exc, True
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.requests += sum(1 for r in batch if r.error is None)
        for request in batch:
            request.done = True

    def _execute(self, batch: list[_Request]) -> None:
        """All the batch's events in one call of the chained recorder; request by request when
        that call fails for something other than a lost connection."""
        for request in batch:
            request.ids, request.error = None, None
        try:
            ids = self._insert([e for r in batch for e in r.events])
        except _LOST:
            raise
        except Exception as exc:  # noqa: BLE001 - a request's own error (a conflict, a broken chain): find whose
            if len(batch) == 1:
                batch[0].error = exc
                return
            self.careful_runs += 1
            self._careful(batch)
            return
        assert ids is not None and len(ids) == sum(len(r.events) for r in batch)
        start = 0
        for request in batch:
            request.ids = list(ids[start:start + len(request.events)])
            start += len(request.events)

    def _careful(self, batch: list[_Request]) -> None:
        """Each request alone, in order: the failing one gets its own error, the others commit. A
        lost connection (after the library's retries) fails the requests not yet stored."""
        for index, request in enumerate(batch):
            try:
                request.ids = self._insert(request.events)
            except _LOST as exc:
                for rest in batch[index:]:
                    rest.error = exc
                return
            except Exception as exc:  # noqa: BLE001 - that request's own error
                request.error = exc

    def _insert(self, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        """The chained recorder's (and so the library's) ``insert_events``: one transaction."""
        return super().insert_events(stored_events)


def group_commit_settings(env: Any) -> tuple[bool, int, float]:
    """(enabled, max_batch, linger seconds) from an eventsourcing ``Environment``."""
    enabled = (env.get("PG_GROUP_COMMIT") or "y").strip().lower() not in ("n", "no", "0", "false", "off")
    max_batch = int(env.get("PG_GROUP_COMMIT_MAX_BATCH") or DEFAULT_MAX_BATCH)
    linger = float(env.get("PG_GROUP_COMMIT_LINGER_MS") or 0) / 1000.0
    return enabled, max_batch, linger
