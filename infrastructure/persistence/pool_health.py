"""Dead pooled connections replaced at once, not one failed attempt at a time (issue 14, item 9).

After the server dropped every connection (a restart, ``pg_terminate_backend``, a failover) every
idle connection of a pool is dead, but the pool learns it only when one is handed out and fails.
The library retries a failed operation 10 times, 0.2 s apart, each time with the next pooled
connection: with 16 connections per pool (and several pools per process) commands kept failing
and answering 503 for seconds. The pool's own per-checkout check (``POSTGRES_PRE_PING``) is no
better: psycopg_pool backs off 1, 2, 4 ... s between failed checks (measured: 10-11 s).

Here the first failure of a connection makes the pool test every idle connection once (psycopg_pool's
``ConnectionPool.check()``, in a background thread, at most once a second): the dead ones are
discarded and replaced, so the library's next attempt, 0.2 s later, gets a live connection.

While the server is down, psycopg_pool retries each missing connection with a delay that doubles
from 1 s (1, 2, 4, 8, 16 ... s, up to its 5-minute reconnect timeout): once the server is back, a
pool waits for its next attempt, up to as long as the outage has lasted, and answers 503 (no
connection within its timeout) all that time. Measured on a private server stopped 8 s: serving
again 5.7 s after it was back; under CPU load, where stopping and starting take longer, the
attempt fell on the 16 s step and ``test_database_restart.py`` saw 503s past its 20 s bound.
``cap_reconnect_delay`` keeps that delay at most ``MAX_RECONNECT_DELAY`` (1 s): a refused
connect to a down server is cheap, and a pool serves again within about a second of the
server's return (docs/reliability.md).

No connection within the pool's timeout (psycopg_pool's ``PoolTimeout``, an ``OperationalError``)
is final: ``heal_on_failure`` raises it as ``DatabaseUnavailable``, which the library's ``@retry``
(10 attempts on ``OperationalError``) does not catch. Retried, each attempt waited the whole pool
timeout again, so a request that arrived during an outage was held until the server came back
(up to 10 x ``POSTGRES_CONNECT_TIMEOUT``) instead of answered 503 (``test_outage_answer_time.py``).
Once a wait has timed out while the pool is not full (it could not open the connections it needed)
the database is *known down*: until a connection is had again, a request waits at most
``DOWN_PROBE_TIMEOUT`` for one, not the whole timeout. A full pool whose connections are all in use
is busy, not down: the next request waits the whole timeout. Without that, requests queued
behind one another (the library's repository fast-forwards a cached aggregate under a lock per
aggregate, so two reads of one contract run one after the other) each waited the timeout in turn.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from eventsourcing.persistence import DatabaseError, InterfaceError, OperationalError
from psycopg_pool import PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

log = logging.getLogger("contracts.persistence")
CONNECTION_LOST = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
MAX_RECONNECT_DELAY = 1.0  # seconds between a pool's attempts to reconnect while the server is down
DOWN_PROBE_TIMEOUT = 0.5  # seconds a request waits for a connection while the database is known down


class DatabaseUnavailable(DatabaseError):
    """No pooled connection within the pool's timeout: the server is down or every connection is
    busy. Not an ``OperationalError``, so that no retry waits the timeout again; answered 503."""


def pool_timed_out(exc: BaseException) -> bool:
    """``exc`` (or what it was raised from: the library re-raises psycopg's errors as its own) is a
    ``PoolTimeout``."""
    return isinstance(exc, PoolTimeout) or isinstance(exc.__cause__, PoolTimeout)


class CappedAttempt(AttemptWithBackoff):
    """psycopg_pool's reconnect back-off (1 s doubling), never more than ``max_delay`` apart."""

    max_delay = MAX_RECONNECT_DELAY

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.max_delay)


def cap_reconnect_delay(pool: Any, max_delay: float = MAX_RECONNECT_DELAY) -> None:
    """Every reconnect attempt of ``pool`` (a ``psycopg_pool.ConnectionPool``) at most ``max_delay``
    seconds after the last failed one. Idempotent."""
    if getattr(pool, "_reconnect_capped", False):
        return
    original = pool._add_connection

    def add_connection(attempt: Any = None, growing: bool = False) -> None:
        if attempt is None:  # a first attempt: the pool's own maintenance task passes it on when it retries
            attempt = CappedAttempt(timeout=pool.reconnect_timeout)
            attempt.max_delay = max_delay
        original(attempt, growing=growing)

    pool._add_connection = add_connection
    pool._reconnect_capped = True


class PoolDoctor:
    """Runs ``pool.check()`` in the background after a connection failure, at most every ``interval``;
    caps the pool's reconnect back-off (``cap_reconnect_delay``)."""

    def __init__(self, pool: Any, interval: float = 1.0) -> None:
        self.pool, self.interval = pool, interval
        cap_reconnect_delay(pool)
        self._lock = threading.Lock()
        self._last = 0.0
        self._running = False
        self.down = False  # a wait for a connection timed out and none has been had since

    def ensure_reachable(self) -> None:
        """While the database is known down: ``DatabaseUnavailable`` unless a connection comes within
        ``DOWN_PROBE_TIMEOUT`` (the pool reconnects at most ``MAX_RECONNECT_DELAY`` apart)."""
        if not self.down:
            return
        try:
            conn = self.pool.getconn(timeout=DOWN_PROBE_TIMEOUT)
        except PoolTimeout as exc:
            raise DatabaseUnavailable("no connection: the database is down") from exc
        self.pool.putconn(conn)
        self.down = False

    def busy(self) -> bool:
        """Every connection the pool may open is open (given out): a wait that timed out met a full
        pool of a database that answers, not one that is down."""
        return int(self.pool.get_stats().get("pool_size", 0)) >= int(self.pool.max_size)

    def connection_failed(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self._running or now - self._last < self.interval:
                return
            self._running, self._last = True, now
        threading.Thread(target=self._check, name="pool-check", daemon=True).start()

    def _check(self) -> None:
        try:
            self.pool.check()
            log.info("connection failure: pool %s checked, dead connections replaced",
                     getattr(self.pool, "name", "?"))
        except Exception as exc:  # noqa: BLE001 - the server may be down for good: the retries will say
            log.info("pool check after a connection failure failed (%s)", type(exc).__name__)
        finally:
            with self._lock:
                self._running = False


def heal_on_failure(datastore: Any) -> PoolDoctor:
    """Wrap ``datastore.get_connection`` (the library's ``PostgresDatastore``; ``transaction()`` goes
    through it) so that a lost connection has the pool checked at once, and no connection within
    the pool's timeout is raised as ``DatabaseUnavailable`` (final)."""
    doctor = PoolDoctor(datastore.pool)
    original = datastore.get_connection

    @contextlib.contextmanager
    def get_connection(*args: Any, **kwargs: Any) -> Iterator[Any]:
        doctor.ensure_reachable()
        try:
            with original(*args, **kwargs) as conn:
                doctor.down = False
                yield conn
        except CONNECTION_LOST as exc:
            doctor.connection_failed()
            if pool_timed_out(exc):
                doctor.down = not doctor.busy()  # busy: the next request waits the whole timeout again
                raise DatabaseUnavailable(str(exc)) from exc
            raise

    datastore.get_connection = get_connection
    datastore.pool_doctor = doctor
    return doctor
