"""Group commit for the PostgreSQL application recorder (issue 7: the write-path lever).

The library's recorder runs every ``insert_events`` call in its own transaction and takes
``LOCK TABLE ... IN EXCLUSIVE MODE`` in it, so that commit order equals notification id
order (projections tailing the log never skip an event). Concurrent writers therefore queue
on the lock, and each pays its own commit (WAL flush) and round trips.

``GroupCommitPostgresApplicationRecorder`` keeps that guarantee and combines concurrent
calls of one process into ONE transaction:

* ``insert_events`` enqueues the request and waits; the first waiting caller becomes the
  leader (one at a time, a thread-safe combiner), takes up to ``max_batch`` waiting requests
  and runs them in one transaction on one connection, in one pipeline: ``BEGIN``,
  ``LOCK TABLE`` and ``NOTIFY`` once, then per request the hash-chain recorder's inserts
  (events, chain hashes, key destruction), then ``COMMIT``: one round trip in the common case
  (plus one when a chain head is not cached).
* the lock is taken at the start of the batch and held until its one commit: ids are handed
  out in request order and committed together, so commit order is still id order.
* a request that fails (a unique violation: a concurrent write of the same aggregate version,
  or anything else it raises) fails alone: the batch is rolled back and run again carefully,
  one ``SAVEPOINT`` and one sync per request; the failing request is rolled back to its
  savepoint and gets its own exception (the same ``IntegrityError`` the library raises) while its
  batch-mates commit.
* after the commit, each waiter gets its own notification ids; chain heads and destroyed keys
  are remembered exactly as by the non-grouped recorder.

Lost connections (``InterfaceError``, ``OperationalError``) retry the whole batch, like the
library's ``@retry`` on ``insert_events``. Calls with no events or with keyword
arguments set (a process recorder's ``tracking``) take the ordinary path.

Settings: ``PG_GROUP_COMMIT`` (looked up as ``CONTRACTS_PG_GROUP_COMMIT``; default on),
``PG_GROUP_COMMIT_MAX_BATCH`` (64), ``PG_GROUP_COMMIT_LINGER_MS`` (0: no waiting for company,
batches form from whoever queued while the previous batch ran).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

import eventsourcing.postgres as es_pg
import psycopg
from eventsourcing.persistence import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)
from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from infrastructure.persistence.chain import Link
from infrastructure.persistence.postgres_factory import ChainedPostgresApplicationRecorder
from infrastructure.personal_data import PostgresKeyStore

DEFAULT_MAX_BATCH = 64
RETRY_ATTEMPTS = 10
RETRY_WAIT = 0.2
_TRANSIENT = (InterfaceError, OperationalError)


class _Request:
    __slots__ = ("events", "done", "ids", "error", "links", "shred", "cursor")

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
        self.done = False
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None
        self.links: list[Link] = []
        self.shred: list[uuid.UUID] = []
        self.cursor: Cursor[DictRow] | None = None


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
        self._cv = threading.Condition(threading.Lock())
        self._leading = False
        self._batch = threading.local()  # ``locked``: the leader took the table lock for its batch
        # counters (benchmarks, tests): batches run, requests committed, careful re-runs
        self.batches = 0
        self.requests = 0
        self.careful_runs = 0

    # -- the combiner ------------------------------------------------------------------------
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events or any(value is not None for value in kwargs.values()):
            return super().insert_events(stored_events, **kwargs)  # ``tracking=None`` is what ``save`` passes
        request = _Request(stored_events)
        with self._cv:
            self._queue.append(request)
            while not request.done and self._leading:
                self._cv.wait()
            if not request.done:
                self._leading = True
        if not request.done:
            self._lead(request)
        if request.error is not None:
            raise request.error
        return request.ids

    def _lead(self, own: _Request) -> None:
        """Run batches until our own request is done, then hand leadership over."""
        try:
            while not own.done:
                if self.linger > 0:
                    time.sleep(self.linger)
                with self._cv:
                    batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                if batch:
                    self._run(batch)
                    with self._cv:
                        self._cv.notify_all()
        finally:
            with self._cv:
                self._leading = False
                self._cv.notify_all()

    def _run(self, batch: list[_Request]) -> None:
        """Execute ``batch``; every request ends done, with ids or its own error."""
        try:
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._execute(batch)
                    break
                except _TRANSIENT:
                    if attempt >= RETRY_ATTEMPTS:
                        raise
                    time.sleep(RETRY_WAIT)
        except BaseException as exc:  # the whole batch failed (e.g. the database is gone)
            for request in batch:
                if not request.done:
                    request.error, request.done = exc, True
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        committed = [r for r in batch if r.error is None]
        self.requests += len(committed)
        links = [link for r in committed for link in r.links]
        shred = [cid for r in committed for cid in r.shred]
        self.linker.remember(links)
        if shred and self.keys is not None:
            self.keys.forget(shred)
        for request in batch:
            request.done = True

    # -- one transaction -------------------------------------------------------------------------
    def _execute(self, batch: list[_Request]) -> None:
        for request in batch:
            request.ids, request.error, request.links, request.shred, request.cursor = None, None, [], [], None
        self._batch.locked = False
        with self.datastore.get_connection() as conn:
            # No server-side prepared statements in a batch: psycopg would keep a statement whose
            # Parse was skipped in an aborted pipeline segment as prepared ("_pg3_N does not exist").
            threshold, conn.prepare_threshold = conn.prepare_threshold, None
            try:
                self._execute_on(conn, batch)
            finally:
                conn.prepare_threshold = threshold
                self._batch.locked = False

    def _execute_on(self, conn: Connection[DictRow], batch: list[_Request]) -> None:
        try:
            self._optimistic(conn, batch)
            return
        except _TRANSIENT:
            raise
        except psycopg.Error as exc:
            lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and not isinstance(
                exc, psycopg.errors.PipelineAborted)
            if lost or conn.closed:
                raise _translate(exc) from exc
        except Exception:  # noqa: BLE001, S110 - a request's own error (e.g. a broken chain): find whose below
            pass
        self._rollback(conn)
        self.careful_runs += 1
        for request in batch:
            request.ids, request.error, request.links, request.shred, request.cursor = None, None, [], [], None
        self._careful(conn, batch)

    def _optimistic(self, conn: Connection[DictRow], batch: list[_Request]) -> None:
        """All requests in one pipeline and one commit: one round trip unless a hash-chain head
        has to be read. Raises (transaction left for the caller to roll back) on any error."""
        with conn.pipeline() as pipeline:
            failure: BaseException | None = None
            try:
                self._begin(conn)
                for request in batch:
                    self._insert_request(conn, request)
                conn.execute("COMMIT")
                pipeline.sync()
                for request in batch:
                    assert request.cursor is not None
                    request.ids = self._fetch_ids_after_insert_events(request.cursor, request.events)
            except BaseException as exc:  # re-raised outside the pipeline block (no pipeline warnings)
                failure = exc
                _drain(pipeline)
        if failure is not None:
            raise failure

    def _careful(self, conn: Connection[DictRow], batch: list[_Request]) -> None:
        """One savepoint and one sync per request: a failing request is rolled back alone."""
        with conn.pipeline() as pipeline:
            failure: BaseException | None = None
            try:
                self._begin(conn)  # lock and notify before the first savepoint: rolling one back would undo them
                for index, request in enumerate(batch):
                    conn.execute(f"SAVEPOINT gc_{index}")
                    try:
                        self._insert_request(conn, request)
                        pipeline.sync()
                        assert request.cursor is not None
                        request.ids = self._fetch_ids_after_insert_events(request.cursor, request.events)
                    except (psycopg.OperationalError, psycopg.InterfaceError):  # incl. PipelineAborted: retry all
                        raise
                    except psycopg.Error as exc:
                        request.error = _translate(exc)
                        request.error.__cause__ = exc
                        _drain(pipeline)
                    except Exception as exc:  # noqa: BLE001 - e.g. ChainBroken: that request's own error
                        request.error = exc
                        _drain(pipeline)
                    if request.error is not None:
                        request.ids, request.links, request.shred = None, [], []
                        conn.execute(f"ROLLBACK TO SAVEPOINT gc_{index}")
                    conn.execute(f"RELEASE SAVEPOINT gc_{index}")
                conn.execute("COMMIT")
                pipeline.sync()
            except BaseException as exc:
                failure = exc
                _drain(pipeline)
        if failure is not None:
            self._rollback(conn)
            if isinstance(failure, psycopg.Error):
                raise _translate(failure) from failure
            raise failure

    def _begin(self, conn: Connection[DictRow]) -> None:
        """BEGIN, then LOCK TABLE and NOTIFY once for the whole batch (the per-request calls of
        the library's ``_insert_stored_events`` are skipped while ``_batch.locked`` is set)."""
        self._batch.locked = False
        conn.execute("BEGIN")
        with conn.cursor() as curs:
            super()._lock_table(curs)
            super()._notify_channel(curs)
        self._batch.locked = True

    def _lock_table(self, curs: Cursor[DictRow]) -> None:
        if not getattr(self._batch, "locked", False):
            super()._lock_table(curs)

    def _notify_channel(self, curs: Cursor[DictRow]) -> None:
        if not getattr(self._batch, "locked", False):
            super()._notify_channel(curs)

    def _insert_request(self, conn: Connection[DictRow], request: _Request) -> None:
        self._pending.links, self._pending.shred = [], []
        with conn.cursor() as curs:
            self._insert_events(curs, request.events)
        curs = conn.cursor()
        self._insert_stored_events(curs, request.events)  # chain: lock, notify, events, hashes, keys
        request.cursor = curs
        request.links, request.shred = self._pending.links, self._pending.shred

    @staticmethod
    def _rollback(conn: Connection[DictRow]) -> None:
        if conn.closed:
            return
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            conn.close()  # the pool replaces a broken connection


def _drain(pipeline: psycopg.Pipeline) -> None:
    """After an error, consume what is left of the aborted pipeline segment (psycopg may raise the
    first error before it has read every result), so the connection can go on."""
    try:
        pipeline.sync()
    except psycopg.errors.PipelineAborted:
        pass
    except (psycopg.OperationalError, psycopg.InterfaceError):
        if pipeline._conn.closed:
            raise
    except psycopg.Error:
        pass


def _translate(exc: psycopg.Error) -> PersistenceError:
    """psycopg errors as the library's (``PostgresDatastore.get_connection`` does the same)."""
    for source, target in ((psycopg.InterfaceError, InterfaceError), (psycopg.OperationalError, OperationalError),
                           (psycopg.DataError, DataError), (psycopg.IntegrityError, IntegrityError),
                           (psycopg.InternalError, InternalError), (psycopg.ProgrammingError, ProgrammingError),
                           (psycopg.NotSupportedError, NotSupportedError), (psycopg.DatabaseError, DatabaseError)):
        if isinstance(exc, source):
            return target(str(exc))
    return PersistenceError(str(exc))


def group_commit_settings(env: Any) -> tuple[bool, int, float]:
    """(enabled, max_batch, linger seconds) from an eventsourcing ``Environment``."""
    enabled = (env.get("PG_GROUP_COMMIT") or "y").strip().lower() not in ("n", "no", "0", "false", "off")
    max_batch = int(env.get("PG_GROUP_COMMIT_MAX_BATCH") or DEFAULT_MAX_BATCH)
    linger = float(env.get("PG_GROUP_COMMIT_LINGER_MS") or 0) / 1000.0
    return enabled, max_batch, linger
