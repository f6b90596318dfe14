"""Issue 7: the group-commit PostgreSQL recorder combines concurrent ``insert_events`` calls
into one transaction without changing what callers see (ids, exceptions, the hash chain)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from application.audit import verify_chain
from infrastructure.bootstrap import Services, build_services
from infrastructure.persistence.group_commit import GroupCommitPostgresApplicationRecorder
from infrastructure.settings import Settings

pytestmark = pytest.mark.postgres

THREADS = 16
PER_THREAD = 25
TOPIC = "tests.persistence:Thing.Happened"
CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
              "contact_name": "Hanako Sample", "contact_email": "hanako@example.invalid"}


@pytest.fixture
def services(fresh_pg_env: dict[str, str]) -> Iterator[Services]:
    env = {**fresh_pg_env, "POSTGRES_POOL_SIZE": "4", "POSTGRES_MAX_OVERFLOW": "16"}
    made = build_services(Settings(database_url=None), env=env)
    yield made
    made.close()


def _recorder(services: Services) -> GroupCommitPostgresApplicationRecorder:
    recorder = services.app.recorder
    assert isinstance(recorder, GroupCommitPostgresApplicationRecorder), "group commit is the default"
    return recorder


def _event(oid: uuid.UUID, version: int) -> StoredEvent:
    return StoredEvent(originator_id=oid, originator_version=version, topic=TOPIC,
                       state=f'{{"n":{version}}}'.encode())


def _run_threads(target: object, count: int = THREADS) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            start.wait()
            target(index)  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def _rows(services: Services) -> list[tuple[int, uuid.UUID, int]]:
    env = services.app.env
    dsn = psycopg.conninfo.make_conninfo(dbname=env.get("POSTGRES_DBNAME"), host=env.get("POSTGRES_HOST"),
                                         port=env.get("POSTGRES_PORT"), user=env.get("POSTGRES_USER"),
                                         password=env.get("POSTGRES_PASSWORD") or "")
    schema = env.get("POSTGRES_SCHEMA")
    with psycopg.connect(dsn) as conn:
        return [(int(r[0]), r[1], int(r[2])) for r in conn.execute(
            f'SELECT notification_id, originator_id, originator_version FROM "{schema}".contracts_events '
            "ORDER BY notification_id")]


def test_concurrent_commands_are_stored_once_with_contiguous_ids_in_commit_order(services: Services) -> None:
    """16 threads x N commands through the application layer: every command's event stored once,
    ids contiguous, and a command that finished before another started has the smaller id."""
    app = services.app
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    contracts = [app.open_contract(f"CUST-{i}", "kintone", "standard", 10, CONTRACTOR, at, trial=True).aggregate_id
                 for i in range(THREADS)]
    before = app.recorder.max_notification_id() or 0
    results: list[list[tuple[float, float, int, uuid.UUID, int]]] = [[] for _ in range(THREADS)]

    def work(index: int) -> None:
        cid = contracts[index]
        for n in range(PER_THREAD):
            started = time.monotonic()
            result = app.change_contractor(cid, {**CONTRACTOR, "contact_name": f"Person {index}-{n}"}, at)
            finished = time.monotonic()
            assert result.events == 1 and result.position is not None
            results[index].append((started, finished, result.position, cid, result.version))

    _run_threads(work)
    recorder = _recorder(services)
    done = [r for per in results for r in per]
    positions = sorted(r[2] for r in done)
    assert len(done) == THREADS * PER_THREAD
    assert positions == list(range(before + 1, before + 1 + len(done)))  # unique and contiguous
    rows = [row for row in _rows(services) if row[0] > before]
    assert [(p, cid, v) for _, _, p, cid, v in sorted(done, key=lambda r: r[2])] == rows  # each stored once
    for per in results:  # each client's commands in order
        assert [r[2] for r in per] == sorted(r[2] for r in per)
    by_finish = sorted(done, key=lambda r: r[1])
    earliest_start_after = sorted(done, key=lambda r: r[0])
    for finished in by_finish[::25]:  # spot checks: commit order is id order
        later = [r for r in earliest_start_after if r[0] > finished[1]]
        assert all(r[2] > finished[2] for r in later)
    assert recorder.batches < recorder.requests  # some batches really combined several commands
    report = verify_chain(app, decode=False)  # synthetic events: the chain only
    assert report.ok, report.first_broken
    for cid in contracts:
        assert app.get_contract(cid).contractor["contact_name"] == f"Person {contracts.index(cid)}-{PER_THREAD - 1}"


def test_a_conflicting_request_fails_alone_while_its_batch_mates_commit(services: Services) -> None:
    recorder = _recorder(services)
    taken = uuid.uuid4()
    assert recorder.insert_events([_event(taken, 1)]) is not None
    release = threading.Event()
    outcomes: dict[int, object] = {}
    original = recorder._execute
    first_batch = threading.Event()

    def slow_execute(batch: list) -> None:  # type: ignore[type-arg]
        if not first_batch.is_set():  # hold the first batch so that the others queue up behind it
            first_batch.set()
            release.wait(10)
        original(batch)

    recorder._execute = slow_execute  # type: ignore[method-assign]
    ids = [uuid.uuid4() for _ in range(8)]

    def insert(index: int) -> None:
        events = [_event(taken, 1)] if index == 3 else [_event(ids[index], 1), _event(ids[index], 2)]
        try:
            outcomes[index] = recorder.insert_events(events)
        except IntegrityError as exc:
            outcomes[index] = exc

    blocker = threading.Thread(target=insert, args=(0,))
    blocker.start()
    assert first_batch.wait(10)
    others = [threading.Thread(target=insert, args=(i,)) for i in range(1, 8)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10
    while len(recorder._queue) < 7 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(recorder._queue) == 7
    batches_before, careful_before = recorder.batches, recorder.careful_runs
    release.set()
    blocker.join(20)
    for t in others:
        t.join(20)
    recorder._execute = original  # type: ignore[method-assign]
    assert recorder.batches - batches_before == 2  # the blocker alone, then the seven together
    assert recorder.careful_runs - careful_before == 1
    assert isinstance(outcomes[3], IntegrityError)
    stored = {(cid, v) for _, cid, v in _rows(services)}
    for index in (0, 1, 2, 4, 5, 6, 7):
        got = outcomes[index]
        assert isinstance(got, list) and len(got) == 2 and got[1] == got[0] + 1, got
        assert {(ids[index], 1), (ids[index], 2)} <= stored
    rows = _rows(services)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert len(rows) == 1 + 7 * 2  # the conflicting request stored nothing
    assert verify_chain(services.app, decode=False).ok  # synthetic events: the chain only


def test_single_caller_semantics_are_unchanged(services: Services) -> None:
    recorder = _recorder(services)
    oid = uuid.uuid4()
    assert recorder.insert_events([]) is None
    first = recorder.insert_events([_event(oid, 1), _event(oid, 2)])
    assert first is not None and list(first) == [first[0], first[0] + 1]
    with pytest.raises(IntegrityError):
        recorder.insert_events([_event(oid, 2), _event(oid, 3)])
    assert [e.originator_version for e in recorder.select_events(oid)] == [1, 2]  # nothing of the failed call
    again = recorder.insert_events([_event(oid, 3)])
    assert again is not None and again[0] > first[1]


def test_group_commit_can_be_switched_off(fresh_pg_env: dict[str, str]) -> None:
    made = build_services(Settings(database_url=None), env={**fresh_pg_env, "CONTRACTS_PG_GROUP_COMMIT": "n"})
    try:
        assert not isinstance(made.app.recorder, GroupCommitPostgresApplicationRecorder)
    finally:
        made.close()


def test_a_batch_interrupted_by_a_base_exception_fails_its_requests_and_leaves_no_leader(services: Services) -> None:
    """A batch stopped by something that is not an ``Exception`` (``KeyboardInterrupt``, a thread's
    ``SystemExit``): every request of that batch gets it, nothing of it is stored, and the lead is
    given up or handed on, so the next callers are stored (they would wait forever otherwise)."""
    recorder = _recorder(services)

    class Stop(BaseException):
        pass

    release = threading.Event()
    held = threading.Event()
    original = recorder._execute
    runs: list[int] = []

    def execute(batch: list) -> None:  # type: ignore[type-arg]
        runs.append(len(batch))
        if len(runs) == 1:  # the blocker's batch: held until three more requests queued
            held.set()
            release.wait(10)
            original(batch)
        elif len(runs) == 2:  # the three queued ones
            raise Stop
        else:
            original(batch)

    recorder._execute = execute  # type: ignore[method-assign]
    ids = [uuid.uuid4() for _ in range(5)]
    outcomes: dict[int, object] = {}

    def insert(index: int) -> None:
        try:
            outcomes[index] = recorder.insert_events([_event(ids[index], 1)])
        except Stop as exc:
            outcomes[index] = exc

    blocker = threading.Thread(target=insert, args=(0,))
    blocker.start()
    assert held.wait(10)
    queued = [threading.Thread(target=insert, args=(i,)) for i in (1, 2, 3)]
    for t in queued:
        t.start()
    deadline = time.monotonic() + 10
    while len(recorder._queue) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in [blocker, *queued]:
        t.join(20)
        assert not t.is_alive()
    assert runs[:2] == [1, 3]
    assert all(isinstance(outcomes[i], Stop) for i in (1, 2, 3))
    assert isinstance(outcomes[0], list) and len(outcomes[0]) == 1
    after = threading.Thread(target=insert, args=(4,))  # a new caller leads and is stored
    after.start()
    after.join(20)
    assert not after.is_alive(), "no leader: the recorder was left leading"
    recorder._execute = original  # type: ignore[method-assign]
    assert isinstance(outcomes[4], list) and len(outcomes[4]) == 1
    stored = {cid for _, cid, _ in _rows(services)}
    assert ids[0] in stored and ids[4] in stored
    assert not stored & {ids[1], ids[2], ids[3]}
