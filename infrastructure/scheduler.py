"""Runs the deadline sweep on a schedule (APScheduler 3) with leader election.

APScheduler 3 has no coordination between processes: several schedulers sharing one job
store run jobs twice or miss them. So every process runs its own scheduler with one
interval job, and the job only sweeps in the process that holds the **leader lock**:

* PostgreSQL: a session advisory lock, ``pg_try_advisory_lock(key)``, on a dedicated
  connection (key derived from the database schema, so two deployments sharing a server
  do not block each other). The lock lives exactly as long as that database session. Each
  tick, and every second during a sweep, the leader checks its connection (``SELECT 1``).
  When the connection is lost the server releases the lock (at once when the session is
  terminated; after the TCP keepalive timeout, set to about 25 s on both sides, when the
  network dies), and **another process may take over** from then on: the old leader stops
  its sweep at its next check, reconnects and tries to acquire again. Between the server
  releasing the lock and the old leader noticing, two sweeps can overlap for a moment; that
  is safe because the sweep is idempotent (see ``application.sweep``).
* SQLite (embedded, single host): an ``fcntl`` lock on ``<database>.scheduler.lock``,
  released by the kernel when the process dies.
* ``InProcessLock``: always leader (tests, a single embedded process).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from psycopg.conninfo import make_conninfo

from application.ports import LeaderLock
from application.sweep import Sweeper, SweepReport
from infrastructure import postgres_params
from infrastructure.metrics import DEADLINES_FIRED, LAST_SWEEP, LEADER, SWEEPS

logger = logging.getLogger(__name__)

JOB_ID = "deadline-sweep"
LOCK_NAMESPACE = "contracts.deadline-scheduler"
# Detect a dead peer in ~25 s on both ends: the client (libpq) and the server session.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
SERVER_KEEPALIVE = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"


class InProcessLock:
    """Always the leader: one process, nobody to coordinate with."""

    def __init__(self) -> None:
        self.held = False

    def acquire(self) -> bool:
        self.held = True
        return True

    def still_held(self) -> bool:
        return self.held

    def release(self) -> None:
        self.held = False

    def describe(self) -> str:
        return "in-process"


class FileLock:
    """Leader lock for the embedded SQLite store: ``flock`` on a file next to the database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._mutex = threading.Lock()

    def acquire(self) -> bool:
        with self._mutex:
            if self._file is not None:
                return True
            handle = open(self.path, "a+")  # noqa: SIM115 - kept open while leading
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._file = handle
            return True

    def still_held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        with self._mutex:
            if self._file is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
                self._file.close()
                self._file = None

    def describe(self) -> str:
        return f"file lock {self.path}"


def advisory_key(*parts: str) -> int:
    """A stable signed 64-bit advisory lock key."""
    digest = hashlib.blake2b("\x1f".join((LOCK_NAMESPACE, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresAdvisoryLock:
    """Leader lock: a session advisory lock held on a dedicated autocommit connection."""

    def __init__(self, conninfo: str, key: int, *, connect_timeout: int = 5, step_back_seconds: float = 10.0,
                 label: str = "") -> None:
        self.conninfo = conninfo
        self.key = key
        self.connect_timeout = connect_timeout
        self.step_back_seconds = step_back_seconds  # after losing the lock, let the others take it first
        self.label = label
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False
        self._retry_after = 0.0
        self._mutex = threading.Lock()

    @classmethod
    def for_env(cls, env: Mapping[str, str], **options: Any) -> PostgresAdvisoryLock:
        """The lock of the database and schema named by eventsourcing ``POSTGRES_*`` settings."""
        schema = postgres_params.schema_of(env)
        return cls(postgres_params.conninfo(env), advisory_key(env.get("POSTGRES_DBNAME") or "", schema),
                   label=f"schema {schema}", **options)

    @property
    def backend_pid(self) -> int | None:
        """The server process of the lock connection (tests terminate it to simulate a lost connection)."""
        conn = self._conn
        return None if conn is None or conn.closed else conn.info.backend_pid

    def _connect(self) -> psycopg.Connection[Any]:
        conninfo = make_conninfo(self.conninfo, connect_timeout=self.connect_timeout, options=SERVER_KEEPALIVE,
                                 application_name="contracts-scheduler-leader", **KEEPALIVE)
        return psycopg.connect(conninfo, autocommit=True)

    def _alive(self) -> bool:
        conn = self._conn
        if conn is None or conn.closed:
            return False
        try:
            conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _drop(self) -> None:
        conn, self._conn, was_held, self._held = self._conn, None, self._held, False
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:  # pragma: no cover - closing a broken connection
                pass
        if was_held:
            self._retry_after = time.monotonic() + self.step_back_seconds
            logger.warning("lost scheduler leadership (%s): the lock connection is gone, so the server has "
                           "released the lock and another process may take over; trying again in %.0fs",
                           self.describe(), self.step_back_seconds)

    def acquire(self) -> bool:
        with self._mutex:
            if self._held:
                if self._alive():
                    return True
                self._drop()
            if time.monotonic() < self._retry_after:
                return False
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            except psycopg.Error as exc:
                logger.warning("cannot reach PostgreSQL for the scheduler lock (%s): %s", self.describe(),
                               type(exc).__name__)
                self._drop()
                return False
            self._held = bool(row and row[0])
            if self._held:
                logger.info("became the scheduler leader (%s, backend %s)", self.describe(), self.backend_pid)
            return self._held

    def still_held(self) -> bool:
        with self._mutex:
            if not self._held:
                return False
            if self._alive():
                return True
            self._drop()
            return False

    def release(self) -> None:
        with self._mutex:
            conn, held = self._conn, self._held
            self._conn, self._held = None, False
            if conn is None:
                return
            try:
                if held and not conn.closed:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                conn.close()
            except psycopg.Error:
                pass
            if held:
                logger.info("released the scheduler leadership (%s)", self.describe())

    def describe(self) -> str:
        return f"advisory lock {self.key} on {self.label or 'PostgreSQL'}"


SweepFunction = Callable[[Callable[[], bool]], SweepReport]


class _SkippedTickFilter(logging.Filter):
    """APScheduler warns on every tick that finds the previous sweep still running (a long catch-up):
    expected with ``max_instances=1``, so those lines are dropped for our job."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("maximum number of running instances reached" in message and "deadline sweep" in message)


logging.getLogger("apscheduler.scheduler").addFilter(_SkippedTickFilter())


class DeadlineScheduler:
    """One APScheduler interval job that sweeps while this process is the leader.

    ``sweep(should_stop)`` runs one sweep; it is handed a function that turns true when
    leadership is lost or the scheduler shuts down, so a long catch-up stops promptly.
    ``max_instances=1`` and ``coalesce=True``: a tick never overlaps the previous one, and
    ticks missed while a long sweep ran collapse into one.
    """

    def __init__(self, sweep: SweepFunction, lock: LeaderLock, interval_seconds: float = 60.0) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.sweep = sweep
        self.lock = lock
        self.interval_seconds = interval_seconds
        self.scheduler: BaseScheduler | None = None
        self.sweeper: Sweeper | None = None  # set by ``build_scheduler``
        self.last_report: SweepReport | None = None
        self.ticks = 0
        self._stopping = threading.Event()
        self._tick_mutex = threading.Lock()
        self._was_leader = False
        # (job id, name, function, seconds): further periodic jobs run by the leader only (checkpoints)
        self.leader_jobs: list[tuple[str, str, Callable[[], None], float]] = []

    def run_if_leader(self, job: Callable[[], None]) -> Callable[[], None]:
        """``job`` wrapped to run only while this process holds the leader lock (never raises)."""
        def run() -> None:
            if self._stopping.is_set():
                return
            try:
                leader = self._was_leader and self.lock.still_held()
            except Exception:  # noqa: BLE001 - not leader this time
                leader = False
            if not leader:
                return
            try:
                job()
            except Exception:  # noqa: BLE001 - logged; the next run retries
                logger.exception("periodic job failed; the next run retries")
        return run

    # -- the job --------------------------------------------------------------------------------------
    def tick(self) -> SweepReport | None:
        """One scheduled run: sweep if leader, else do nothing. Never raises."""
        with self._tick_mutex:
            self.ticks += 1
            if self._stopping.is_set():
                return None
            try:
                leader = self.lock.acquire()
            except Exception:  # noqa: BLE001 - the next tick tries again
                logger.exception("scheduler lock check failed")
                leader = False
            if leader != self._was_leader:
                logger.info("this process %s the deadline scheduler leader (%s)",
                            "is now" if leader else "is no longer", self.lock.describe())
                self._was_leader = leader
                LEADER.set(1 if leader else 0)
            if not leader:
                logger.debug("not the scheduler leader; skipping this tick")
                return None
            try:
                report = self.sweep(self._should_stop)
            except Exception:  # noqa: BLE001 - logged; the next tick retries
                logger.exception("deadline sweep failed; the next tick retries")
                SWEEPS.labels("failed").inc()
                return None
            self.last_report = report
            observe_sweep(report)
            return report

    def _should_stop(self) -> bool:
        return self._stopping.is_set() or not self.lock.still_held()

    # -- APScheduler ------------------------------------------------------------------------------------
    def _configure(self, scheduler: BaseScheduler) -> BaseScheduler:
        executor_log = logging.getLogger("apscheduler.executors.default")
        if executor_log.level == logging.NOTSET:  # "Running job ... executed successfully" every tick: our
            executor_log.setLevel(logging.WARNING)  # own lines say what a sweep did; errors still show
        scheduler.add_job(self.tick, "interval", seconds=self.interval_seconds, id=JOB_ID, name="deadline sweep",
                          max_instances=1, coalesce=True, misfire_grace_time=None,
                          next_run_time=datetime.now(UTC), replace_existing=True)
        for job_id, name, job, seconds in self.leader_jobs:
            scheduler.add_job(self.run_if_leader(job), "interval", seconds=seconds, id=job_id, name=name,
                              max_instances=1, coalesce=True, misfire_grace_time=None, replace_existing=True)
        scheduler.add_listener(self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        return scheduler

    @staticmethod
    def _on_job_event(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            logger.warning("deadline sweep tick missed at %s", event.scheduled_run_time)

    def start(self) -> None:
        """Run in background threads (``contracts serve``)."""
        self._stopping.clear()
        self.scheduler = self._configure(BackgroundScheduler(timezone=UTC))
        self.scheduler.start()
        logger.info("deadline scheduler started: every %.0fs, leader election by %s", self.interval_seconds,
                    self.lock.describe())

    def run_forever(self) -> None:
        """Block the calling thread (``contracts scheduler``) until ``shutdown`` or Ctrl-C."""
        self._stopping.clear()
        self.scheduler = self._configure(BlockingScheduler(timezone=UTC))
        logger.info("deadline scheduler running: every %.0fs, leader election by %s", self.interval_seconds,
                    self.lock.describe())
        try:
            self.scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            logger.info("interrupted")
        finally:
            self.shutdown()

    def trigger(self) -> None:
        """Run the job as soon as possible (sandbox: after the service clock moved)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    def shutdown(self, wait: bool = True) -> None:
        """Stop ticking; a running sweep stops at its next check; then give up leadership."""
        self._stopping.set()
        if self.scheduler is not None and self.scheduler.running:
            try:
                self.scheduler.shutdown(wait=wait)
            except SchedulerNotRunningError:  # pragma: no cover - raced with another shutdown
                pass
        with self._tick_mutex:
            self.lock.release()
            if self._was_leader:
                self._was_leader = False
                LEADER.set(0)
        logger.info("deadline scheduler stopped")


def observe_sweep(report: SweepReport) -> None:
    """A sweep's figures in the metrics (``infrastructure.metrics``)."""
    SWEEPS.labels("complete" if report.complete and not report.failures else "incomplete").inc()
    for kind, count in report.by_kind.items():
        DEADLINES_FIRED.labels(kind).inc(count)
    LAST_SWEEP.set(time.time())


def default_interval(mode: str) -> float:
    """Seconds between ticks: a minute in production; 2 s in sandbox, where clients move the clock."""
    return 2.0 if mode == "sandbox" else 60.0
