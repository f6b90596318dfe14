"""The library's own recorder test cases (``eventsourcing.tests.persistence``) against every custom
recorder and read store, on SQLite and PostgreSQL, as the library's ``tests/persistence_tests``
run them against its recorders (issue 13).

* the chained application recorders (hash chain through the ``_insert_events`` hook): SQLite,
  PostgreSQL, and PostgreSQL with group commit: ``ApplicationRecorderTestCase``,
  ``NonInterleavingNotificationIDsBaseCase`` and ``AggregateRecorderTestCase``;
* the chained process recorders (what the factories' ``process_recorder()`` makes):
  ``ProcessRecorderTestCase``;
* the read stores (tracking recorders of the projections): ``TrackingRecorderTestCase``.

Refused on purpose, and asserted where the library's scenario meets it (each override says so):

* version 0: the hash chain starts at version 1 (``chain.UnchainableEvent``, before anything
  is stored). The library's concurrency and performance scenarios write versions from 0: the
  override asserts the refusal, then runs the library's scenario through ``FromVersionOne``,
  which stores an aggregate whose first version is 0 one version higher (and reads it back
  one lower);
* text originator ids: refused when the recorder is constructed (the library's "with text
  originator id" variants are replaced by that assertion);
* ``POSTGRES_ENABLE_DB_FUNCTIONS``: refused when the recorder is constructed.

PostgreSQL runs use the project's scratch database (``pg_dsn``) with a fresh schema per test,
never the library's ``postgres_utils`` (which terminates every backend on the server).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from psycopg import sql

from infrastructure.persistence.chain import UnchainableEvent
from infrastructure.persistence.group_commit import GroupCommitPostgresApplicationRecorder
from infrastructure.persistence.postgres_recorder import (
    ChainedPostgresApplicationRecorder,
    ChainedPostgresProcessRecorder,
)
from infrastructure.persistence.sqlite_factory import ChainedSQLiteApplicationRecorder, ChainedSQLiteProcessRecorder
from infrastructure.read_store.postgres import PostgresReadStore
from infrastructure.read_store.sqlite import SQLiteReadStore

# --------------------------------------------------------------------------- stores


def join_threads_started_since(before: set[threading.Thread]) -> None:
    """The library's ``test_concurrent_no_conflicts`` sets its readers' stop flag but does not join
    them: closing the datastore under a reader still inside ``select_notifications`` closed its
    SQLite connection mid-statement and crashed the interpreter (segfault, 2 runs in 12)."""
    for thread in set(threading.enumerate()) - before:
        if not thread.daemon and thread is not threading.current_thread():  # pools' workers are daemons
            thread.join(timeout=30)


class SQLiteStore:
    """A fresh SQLite file per test (the library's concurrency tests need a file, not ``:memory:``)."""

    @pytest.fixture(autouse=True)
    def _sqlite_file(self, tmp_path: Path) -> Iterator[None]:
        self.datastores: list[SQLiteDatastore] = []
        self.db_path = str(tmp_path / "conformance.sqlite")
        before = set(threading.enumerate())
        yield
        join_threads_started_since(before)
        for datastore in self.datastores:
            datastore.close()

    def datastore(self, **kwargs: Any) -> SQLiteDatastore:
        made = SQLiteDatastore(db_name=self.db_path, pool_size=20, **kwargs)
        self.datastores.append(made)
        return made


@pytest.mark.postgres
class PostgresStore:
    """A fresh schema in the session's scratch database per test, dropped afterwards."""

    @pytest.fixture(autouse=True)
    def _pg_schema(self, pg_dsn: str) -> Iterator[None]:
        self.schema = f"conf_{uuid.uuid4().hex[:12]}"
        self.params = psycopg.conninfo.conninfo_to_dict(pg_dsn)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        self.datastores: list[PostgresDatastore] = []
        before = set(threading.enumerate())
        yield
        join_threads_started_since(before)
        for datastore in self.datastores:
            datastore.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(self.schema)))

    def datastore(self, **kwargs: Any) -> PostgresDatastore:
        p = self.params
        made = PostgresDatastore(str(p.get("dbname", "postgres")), str(p.get("host", "127.0.0.1")),
                                 str(p.get("port", "5432")), str(p.get("user", "postgres")),
                                 str(p.get("password", "")), schema=self.schema,
                                 **{"pool_size": 4, "max_overflow": 12, **kwargs})
        self.datastores.append(made)
        return made


# --------------------------------------------------------------------------- version 0


class FromVersionOne:
    """A view of a chained recorder for the library's scenarios that write versions from 0: an
    aggregate whose first written version is 0 is stored one version higher and read back one
    lower; everything else passes through unchanged."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder
        self._shifted: set[Any] = set()

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._shifted |= {e.originator_id for e in stored_events if e.originator_version == 0}
        return self._recorder.insert_events(  # type: ignore[no-any-return]
            [dataclasses.replace(e, originator_version=e.originator_version + 1)
             if e.originator_id in self._shifted else e for e in stored_events], **kwargs)

    def select_events(self, originator_id: Any, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        if originator_id not in self._shifted:
            return self._recorder.select_events(  # type: ignore[no-any-return]
                originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        found = self._recorder.select_events(originator_id, gt=None if gt is None else gt + 1,
                                             lte=None if lte is None else lte + 1, desc=desc, limit=limit)
        return [dataclasses.replace(e, originator_version=e.originator_version - 1) for e in found]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)


class ChainRefusesVersionZero:
    """Overrides of the library's scenarios that write version 0 (see the module's docstring)."""

    from_version_one = False

    def make_recorder(self) -> Any:
        raise NotImplementedError

    def create_recorder(self) -> Any:
        recorder = self.make_recorder()
        return FromVersionOne(recorder) if self.from_version_one else recorder

    def assert_version_zero_is_refused(self) -> None:
        recorder = self.make_recorder()
        oid = uuid.uuid4()
        with pytest.raises(UnchainableEvent, match="starts at version 1"):
            recorder.insert_events([StoredEvent(oid, 0, "topic", b"state"), StoredEvent(oid, 1, "topic", b"state")])
        assert recorder.select_events(oid) == []  # nothing of the refused call

    def run_from_version_one(self, scenario: str, *args: Any) -> None:
        self.assert_version_zero_is_refused()
        self.from_version_one = True
        try:
            getattr(super(), scenario)(*args)
        finally:
            self.from_version_one = False


class ApplicationRecorderCases(ChainRefusesVersionZero, ApplicationRecorderTestCase[Any]):
    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:
        """Refused on purpose: the scenario writes versions from 0, which the hash chain refuses
        (asserted); then the library's scenario with every such aggregate one version higher."""
        self.run_from_version_one("test_concurrent_no_conflicts", initial_position)

    def test_concurrent_throughput(self) -> None:
        """Refused on purpose: versions from 0 (asserted); then the library's scenario from version 1."""
        self.run_from_version_one("test_concurrent_throughput")


class AggregateRecorderCases(ChainRefusesVersionZero, AggregateRecorderTestCase):
    """The aggregate recorder case against an application recorder, which answers
    ``insert_events`` with notification ids where an aggregate recorder answers ``None``."""

    def create_recorder(self) -> Any:
        return _WithoutIds(super().create_recorder())

    def test_insert_and_select(self) -> None:
        """Refused on purpose: the scenario's last write is an aggregate at version 0 (asserted);
        the library's scenario then stores that aggregate from version 1 (and reads it back as 0)."""
        self.run_from_version_one("test_insert_and_select")


class _WithoutIds:
    """An application recorder seen as an aggregate recorder: ``insert_events`` answers ``None``
    (after checking that the application recorder gave one id per stored event)."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        ids = self._recorder.insert_events(stored_events, **kwargs)
        if stored_events:
            assert ids is not None and len(ids) == len(stored_events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)


class NonInterleavingCases(ChainRefusesVersionZero, NonInterleavingNotificationIDsBaseCase):
    def create_stack(self, originator_id: uuid.UUID | str) -> Sequence[StoredEvent]:
        """The library's stack starts at version 0, which the chain refuses (asserted in
        ``test_version_zero_is_refused``): the same stack from version 1."""
        return [dataclasses.replace(e, originator_version=e.originator_version + 1)
                for e in super().create_stack(originator_id)]

    def test_version_zero_is_refused(self) -> None:
        """Refused on purpose: the hash chain starts at version 1."""
        self.assert_version_zero_is_refused()


class ProcessRecorderCases(ChainRefusesVersionZero, ProcessRecorderTestCase):
    def test_performance(self) -> None:
        """Refused on purpose: the scenario writes version 0 (asserted); then from version 1."""
        self.run_from_version_one("test_performance")


# --------------------------------------------------------------------------- SQLite


class TestChainedSQLiteApplicationRecorder(SQLiteStore, ApplicationRecorderCases):
    def make_recorder(self) -> ChainedSQLiteApplicationRecorder:
        recorder = ChainedSQLiteApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestChainedSQLiteAsAggregateRecorder(SQLiteStore, AggregateRecorderCases):
    def make_recorder(self) -> ChainedSQLiteApplicationRecorder:
        recorder = ChainedSQLiteApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestChainedSQLiteNonInterleaving(SQLiteStore, NonInterleavingCases):
    insert_num = 1000

    def make_recorder(self) -> ChainedSQLiteApplicationRecorder:
        recorder = ChainedSQLiteApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestChainedSQLiteProcessRecorder(SQLiteStore, ProcessRecorderCases):
    def make_recorder(self) -> ChainedSQLiteProcessRecorder:
        recorder = ChainedSQLiteProcessRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestSQLiteReadStore(SQLiteStore, TrackingRecorderTestCase):
    def create_recorder(self) -> SQLiteReadStore:
        recorder = SQLiteReadStore(self.datastore())
        recorder.create_table()
        return recorder


def test_sqlite_recorders_refuse_text_originator_ids(tmp_path: Path) -> None:
    """Refused on purpose (the library's "with text originator id" variants): the chain, the keys
    and the audit read originator ids as UUIDs; the refusal comes at construction and says why."""
    datastore = SQLiteDatastore(db_name=str(tmp_path / "text.sqlite"), originator_id_type="text")
    try:
        for recorder_class in (ChainedSQLiteApplicationRecorder, ChainedSQLiteProcessRecorder):
            with pytest.raises(ProgrammingError, match="need UUID originator ids"):
                recorder_class(datastore)
    finally:
        datastore.close()


# --------------------------------------------------------------------------- PostgreSQL


class TestChainedPostgresApplicationRecorder(PostgresStore, ApplicationRecorderCases):
    def test_insert_subscribe(self) -> None:
        """The library's optional subscription scenario (LISTEN/NOTIFY), as its own PostgreSQL case runs it."""
        self.optional_test_insert_subscribe()

    def make_recorder(self) -> ChainedPostgresApplicationRecorder:
        recorder = ChainedPostgresApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestGroupCommitPostgresApplicationRecorder(PostgresStore, ApplicationRecorderCases):
    def test_insert_subscribe(self) -> None:
        """The library's optional subscription scenario (LISTEN/NOTIFY), as its own PostgreSQL case runs it."""
        self.optional_test_insert_subscribe()

    def make_recorder(self) -> GroupCommitPostgresApplicationRecorder:
        recorder = GroupCommitPostgresApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestChainedPostgresAsAggregateRecorder(PostgresStore, AggregateRecorderCases):
    def make_recorder(self) -> GroupCommitPostgresApplicationRecorder:
        recorder = GroupCommitPostgresApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestChainedPostgresNonInterleaving(PostgresStore, NonInterleavingCases):
    insert_num = 100  # as the library's own PostgreSQL case

    def make_recorder(self) -> ChainedPostgresApplicationRecorder:
        recorder = ChainedPostgresApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestGroupCommitPostgresNonInterleaving(PostgresStore, NonInterleavingCases):
    insert_num = 100

    def make_recorder(self) -> GroupCommitPostgresApplicationRecorder:
        recorder = GroupCommitPostgresApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestChainedPostgresProcessRecorder(PostgresStore, ProcessRecorderCases):
    def make_recorder(self) -> ChainedPostgresProcessRecorder:
        recorder = ChainedPostgresProcessRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestPostgresReadStore(PostgresStore, TrackingRecorderTestCase):
    def create_recorder(self) -> PostgresReadStore:
        recorder = PostgresReadStore(self.datastore())
        recorder.create_table()
        return recorder


@pytest.mark.postgres
def test_postgres_recorders_refuse_text_ids_and_database_functions(pg_dsn: str) -> None:
    """Refused on purpose, at construction, saying why: text originator ids (as for SQLite), and
    ``POSTGRES_ENABLE_DB_FUNCTIONS`` (that insert path bypasses the ``_insert_events`` hook)."""
    p = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    args = (str(p.get("dbname", "postgres")), str(p.get("host", "127.0.0.1")), str(p.get("port", "5432")),
            str(p.get("user", "postgres")), str(p.get("password", "")))
    for kwargs, reason in (({"originator_id_type": "text"}, "need UUID originator ids"),
                           ({"enable_db_functions": True}, "bypasses the hash chain")):
        datastore = PostgresDatastore(*args, **kwargs)  # type: ignore[arg-type]
        try:
            for recorder_class in (ChainedPostgresApplicationRecorder, GroupCommitPostgresApplicationRecorder,
                                   ChainedPostgresProcessRecorder):
                with pytest.raises(ProgrammingError, match=reason):
                    recorder_class(datastore)
        finally:
            datastore.close()


# the library's cases and the abstract ones above are not tests of their own (pytest collects every TestCase)
del AggregateRecorderTestCase, ApplicationRecorderTestCase, NonInterleavingNotificationIDsBaseCase
del ProcessRecorderTestCase, TrackingRecorderTestCase
del ApplicationRecorderCases, AggregateRecorderCases, NonInterleavingCases, ProcessRecorderCases


@pytest.mark.postgres
class TestConflictLeavesTheConnectionUsable(PostgresStore):
    def test_a_conflict_leaves_the_connection_usable(self) -> None:
        """Conflicts (raised by the chain hashes' insert, before the library queues its lock and
        insert) leave the connection usable: eight conflicts and inserts in turn on one connection.
        This does not reproduce the fault that made the hook sync its segment (a statement skipped
        in an aborted pipeline segment taken for prepared); ``tests/reliability/test_racing_writers.py``
        does, under 24 racing clients."""
        first = ChainedPostgresApplicationRecorder(self.datastore())
        first.create_table()
        taken = uuid.uuid4()
        first.insert_events([StoredEvent(taken, 1, "topic", b"state")])
        for recorder_class in (ChainedPostgresApplicationRecorder, GroupCommitPostgresApplicationRecorder):
            recorder = recorder_class(self.datastore(pool_size=1, max_overflow=0))  # one connection throughout
            for _ in range(8):
                with pytest.raises(IntegrityError):
                    recorder.insert_events([StoredEvent(taken, 1, "topic", b"state")])
                ids = recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "topic", b"state")])
                assert ids is not None and len(ids) == 1
