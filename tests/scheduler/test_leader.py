"""Leader election and the APScheduler job: one scheduler acts at a time; a lost connection
hands leadership over; two schedulers against one PostgreSQL never double-fire."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

import psycopg
import pytest
from scheduler_kit import World, jst
from test_sweep import GAP_END, populate, stream

from application.sweep import SweepReport
from infrastructure.bootstrap import leader_lock_for
from infrastructure.scheduler import DeadlineScheduler, FileLock, InProcessLock, PostgresAdvisoryLock


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def terminate(pg_dsn: str, pid: int | None) -> None:
    assert pid is not None
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
@pytest.mark.reliability
def test_advisory_lock_one_holder_and_takeover_after_a_lost_connection(
        pg_dsn: str, pg_schemas: Callable[[], dict[str, str]]) -> None:
    env = pg_schemas()
    a, b = (PostgresAdvisoryLock.for_env(env, step_back_seconds=0.3) for _ in range(2))
    other_schema = PostgresAdvisoryLock.for_env(pg_schemas())
    try:
        assert a.acquire() and a.acquire()  # re-entrant for the holder
        assert not b.acquire()
        assert other_schema.acquire()  # another deployment (schema) has its own leader
        assert a.still_held() and not b.still_held()
        terminate(pg_dsn, a.backend_pid)  # the leader's connection dies: the server releases the lock
        assert wait_until(b.acquire, 5)
        assert not a.still_held()  # the old leader notices at its next check ...
        assert not a.acquire()  # ... steps back for a moment ...
        time.sleep(0.3)
        assert not a.acquire()  # ... reconnects, and does not get the lock back while b leads
        b.release()
        assert a.acquire()
    finally:
        for lock in (a, b, other_schema):
            lock.release()


def test_file_lock_for_the_embedded_store(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "c.sqlite")}
    a, b = leader_lock_for(env), leader_lock_for(env)
    assert isinstance(a, FileLock) and a.path == tmp_path / "c.sqlite.scheduler.lock"
    assert a.acquire() and not b.acquire()
    a.release()
    assert b.acquire() and not a.acquire()
    b.release()
    assert isinstance(leader_lock_for({"PERSISTENCE_MODULE": "eventsourcing.popo"}), InProcessLock)


class FakeSweep:
    """Records who swept when; each sweep lasts until ``hold`` seconds pass or it is told to stop."""

    def __init__(self, name: str, log: list[tuple[str, float, float, bool]], hold: float = 0.0) -> None:
        self.name, self.log, self.hold = name, log, hold

    def __call__(self, should_stop: Callable[[], bool]) -> SweepReport:
        started = time.monotonic()
        stopped = False
        while time.monotonic() - started < self.hold:
            if should_stop():
                stopped = True
                break
            time.sleep(0.01)
        self.log.append((self.name, started, time.monotonic(), stopped))
        return SweepReport(today=date(2026, 4, 1), until=date(2026, 4, 1), complete=not stopped)


@pytest.mark.postgres
@pytest.mark.reliability
def test_two_schedulers_one_leader_then_takeover(pg_dsn: str, pg_schemas: Callable[[], dict[str, str]]) -> None:
    env = pg_schemas()
    log: list[tuple[str, float, float, bool]] = []
    locks = {n: PostgresAdvisoryLock.for_env(env, step_back_seconds=1.0) for n in ("a", "b")}
    schedulers = {n: DeadlineScheduler(FakeSweep(n, log, hold=0.3), locks[n], interval_seconds=0.1)
                  for n in ("a", "b")}
    try:
        schedulers["a"].start()
        assert wait_until(lambda: len(log) >= 1)
        schedulers["b"].start()
        assert wait_until(lambda: schedulers["b"].ticks >= 5)
        assert {name for name, *_ in log} == {"a"}  # b ticks but never sweeps
        terminate(pg_dsn, locks["a"].backend_pid)
        assert wait_until(lambda: any(name == "b" for name, *_ in log))
        a_ticks = schedulers["a"].ticks
        assert wait_until(lambda: schedulers["a"].ticks >= a_ticks + 5)  # a keeps ticking, as a follower
    finally:
        for s in schedulers.values():
            s.shutdown()
    first_b = next(i for i, entry in enumerate(log) if entry[0] == "b")
    assert all(name == "a" for name, *_ in log[:first_b]) and all(name == "b" for name, *_ in log[first_b:])
    # a's sweep that was running when its connection died stopped at its next check
    a_last = [entry for entry in log if entry[0] == "a"][-1]
    assert a_last[3] or a_last[2] <= log[first_b][1] + 0.05


@pytest.mark.postgres
@pytest.mark.reliability
def test_two_schedulers_against_one_postgres_never_double_fire(
        pg_world: Callable[..., World], pg_schemas: Callable[[], dict[str, str]]) -> None:
    env = pg_schemas()
    worlds = [pg_world(env, batch_size=3), pg_world(env, batch_size=3)]
    ids = populate(worlds[0])
    reports: dict[int, list[SweepReport]] = {0: [], 1: []}
    schedulers = []
    for n, w in enumerate(worlds):
        w.clock.set(jst(2026, 6, 30, 6))

        def sweep(should_stop: Callable[[], bool], w: World = w, n: int = n) -> SweepReport:
            report = w.sweeper.run(should_stop=should_stop)
            reports[n].append(report)
            return report

        schedulers.append(DeadlineScheduler(sweep, PostgresAdvisoryLock.for_env(env), interval_seconds=0.05))
    try:
        barrier = threading.Barrier(2)
        starters = [threading.Thread(target=lambda s=s: (barrier.wait(), s.start())) for s in schedulers]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        assert wait_until(lambda: all(s.ticks >= 10 for s in schedulers))
    finally:
        for s in schedulers:
            s.shutdown()
    fired = {n: sum(r.fired for r in rs) for n, rs in reports.items()}
    assert sorted(fired.values())[0] == 0 and sorted(fired.values())[1] > 20  # exactly one process acted
    reader = pg_world(env)  # a fresh process view: no personal-data keys cached from before DataDeleted
    counts: Counter[tuple[uuid.UUID, str, int]] = Counter()
    for aggregate_id in ids:
        for name, version, _ in stream(reader, aggregate_id):
            counts[(aggregate_id, name, version)] += 1
    assert max(counts.values()) == 1
    twin = pg_world()
    populate(twin)
    twin.sweep_on(GAP_END)
    for aggregate_id in ids:
        ours, theirs = stream(reader, aggregate_id), stream(twin, aggregate_id)
        assert len(ours) == len(theirs), aggregate_id
        for a, b in zip(ours, theirs, strict=True):
            assert a == b, (a[0], a[1], {k: (v, b[2].get(k)) for k, v in a[2].items() if v != b[2].get(k)})


def test_tick_survives_a_failing_sweep_and_a_failing_lock(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenLock(InProcessLock):
        def acquire(self) -> bool:
            raise OSError("lock service down")

    def boom(should_stop: Callable[[], bool]) -> SweepReport:
        raise RuntimeError("bug")

    assert DeadlineScheduler(boom, InProcessLock()).tick() is None
    assert DeadlineScheduler(boom, BrokenLock()).tick() is None
    assert "deadline sweep failed; the next tick retries" in caplog.text


def test_trigger_runs_the_job_now_and_shutdown_stops_a_long_sweep() -> None:
    log: list[tuple[str, float, float, bool]] = []
    scheduler = DeadlineScheduler(FakeSweep("x", log), InProcessLock(), interval_seconds=3600)
    scheduler.start()
    try:
        assert wait_until(lambda: len(log) == 1)  # the first tick runs at start
        scheduler.trigger()  # e.g. after the sandbox clock moved
        assert wait_until(lambda: len(log) == 2)
    finally:
        scheduler.shutdown()
    long = DeadlineScheduler(FakeSweep("y", log, hold=30), InProcessLock(), interval_seconds=3600)
    long.start()
    assert wait_until(lambda: long.ticks == 1)
    started = time.monotonic()
    long.shutdown()
    assert time.monotonic() - started < 5 and log[-1][0] == "y" and log[-1][3]  # stopped early
