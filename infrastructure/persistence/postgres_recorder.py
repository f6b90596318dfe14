"""The PostgreSQL recorders of ``infrastructure.persistence.postgres_factory``: the library's,
with the per-aggregate hash chain (``<prefix>_event_hashes``) and the destruction of a contract's
key written in the insert's own transaction, and the chain store's reads
(``application.audit.ChainStore``) and the bulk reads of the sweep.

The write (issue 21): an insert of events only (no tracking row, no key to destroy: every
command's and the sweep's) is ONE prepared statement, one round trip in autocommit: the
database function ``<prefix>_events_insert`` takes the table lock (``LOCK TABLE ... IN
EXCLUSIVE MODE``, before the first notification id is drawn, as the library's insert does:
commit order = notification order), sends the ``NOTIFY``, inserts the chain hashes and the
events, and returns the notification ids. The library's own path (``BEGIN``, ``SET LOCAL``,
``LOCK``, ``NOTIFY``, the hashes through its ``_insert_events`` hook, the INSERT, ``COMMIT``: two
round trips and seven statements) is kept for the rest: a process recorder's tracking row, a
``DataDeleted`` destroying a key.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import eventsourcing.postgres as es_pg
from eventsourcing.persistence import InterfaceError, Notification, OperationalError, ProgrammingError, StoredEvent
from eventsourcing.utils import retry
from psycopg import Connection, Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal

from application.audit import CONTACTS_KEY, key_id
from application.ports import ChainRow
from infrastructure.persistence import packed_arrays as packed
from infrastructure.persistence.chain import ChainLinker, refuse_text_ids
from infrastructure.personal_data import PostgresKeyStore, keys_to_destroy, prefetch_keys_of


class ChainedPostgresApplicationRecorder(es_pg.PostgresApplicationRecorder):
    """The library's PostgreSQL application recorder plus the hash chain and key destruction, in
    the insert's own transaction, through the library's hook ``_insert_events`` (as its
    ``examples/searchabletimestamps``); the library's ``insert_events`` keeps its ``@retry``, its
    error translation, the table lock (commit order = notification order) and the NOTIFY.

    Refused on purpose, at construction: text originator ids (``ORIGINATOR_ID_TYPE=text``) and
    ``POSTGRES_ENABLE_DB_FUNCTIONS`` (that insert path bypasses ``_insert_events``); at insert:
    versions below 1 (``chain.UnchainableEvent``)."""

    history_binary = True
    """A first load's one read in the binary wire format (issue 21): the stored states (bytea) come
    as they are, not as hex text that the server encodes and the client decodes again."""

    def __init__(self, datastore: es_pg.PostgresDatastore, *, events_table_name: str = "stored_events",
                 keys: PostgresKeyStore | None = None, **kwargs: Any) -> None:
        if datastore.enable_db_functions:
            raise ProgrammingError("POSTGRES_ENABLE_DB_FUNCTIONS inserts through a database function that "
                                   "bypasses the hash chain: not supported")
        refuse_text_ids(datastore.originator_id_type)
        super().__init__(datastore, events_table_name=events_table_name, **kwargs)
        self.hashes_table_name = events_table_name.removesuffix("_events") + "_event_hashes"
        self.check_identifier_length(self.hashes_table_name)
        self.keys = keys
        self.linker = ChainLinker()
        self._pending = threading.local()
        schema, events, hashes = (Identifier(self.datastore.schema), Identifier(self.events_table_name),
                                  Identifier(self.hashes_table_name))
        id_type = Identifier(self.datastore.originator_id_type)
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{hashes} (originator_id {id_type} NOT NULL, "
            "originator_version bigint NOT NULL, hash bytea NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))").format(
                schema=schema, hashes=hashes, id_type=id_type))
        # the chain hashes of a batch in one statement, pipelined with the library's event insert
        self.insert_hashes_statement = SQL(
            "INSERT INTO {schema}.{hashes} (originator_id, originator_version, hash) "
            "SELECT * FROM unnest(%s::{id_type}[], %s::bigint[], %s::bytea[])").format(
                schema=schema, hashes=hashes, id_type=id_type)
        self.select_hashes_statement = SQL(
            "SELECT h.originator_id, h.originator_version, h.hash FROM {schema}.{hashes} h "
            "JOIN unnest(%s::{id_type}[], %s::bigint[]) AS k(originator_id, originator_version) "
            "USING (originator_id, originator_version)").format(schema=schema, hashes=hashes, id_type=id_type)
        self.rows_statement = SQL(
            "SELECT e.notification_id AS position, originator_id, originator_version, e.topic, e.state, h.hash "
            "FROM {schema}.{events} e LEFT JOIN {schema}.{hashes} h USING (originator_id, originator_version) "
        ).format(schema=schema, events=events, hashes=hashes)
        self._select_events_queries: dict[tuple[bool, bool, bool, bool], str] = {}
        # an aggregate's whole history (a first load), with its chain head and, when not cached, its
        # two keys, in ONE round trip (select_events): part 0 the events, 1 the head, 2 the key rows
        # (positional parameters: the id twice, then the two key ids; tuple rows). The key rows by
        # ``IN (%s, %s)``, not ``= ANY(%s)``: PostgreSQL plans the array as a bitmap heap scan, and
        # the whole read cost ~2x the server CPU (250 vs 125 us) and ~60 us more in the client
        history = SQL(
            "SELECT 0 AS part, originator_version AS version, topic, state, NULL::uuid AS contract_id, "
            "NULL::text AS kek FROM {schema}.{events} WHERE originator_id = %s UNION ALL "
            "(SELECT 1, originator_version, NULL, hash, NULL, NULL FROM {schema}.{hashes} "
            "WHERE originator_id = %s ORDER BY originator_version DESC LIMIT 1)").format(
                schema=schema, events=events, hashes=hashes)
        self.history_query = (history + SQL(" ORDER BY 1, 2")).as_string()
        self.notifications_query = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE notification_id>=%s ORDER BY notification_id LIMIT %s").format(
                schema=schema, events=events).as_string()
        # the events after a version (a cached aggregate brought up to date: ``serve --workers N``
        # checks each command's cached contract so) and, in the same round trip, their chain head,
        # so the next write links to it without reading it (none when nothing is newer: two index
        # probes that find nothing, instead of the last event's whole row)
        self.after_query = SQL(
            "SELECT 0 AS part, originator_version AS version, topic, state FROM {schema}.{events} "
            "WHERE originator_id = %s AND originator_version > %s UNION ALL "
            "(SELECT 1, originator_version, NULL, hash FROM {schema}.{hashes} "
            "WHERE originator_id = %s AND originator_version > %s ORDER BY originator_version DESC LIMIT 1) "
            "ORDER BY 1, 2").format(schema=schema, events=events, hashes=hashes).as_string()
        self.history_keys_query = self.history_query if keys is None else (history + SQL(
            " UNION ALL SELECT 2, 0, NULL, key, contract_id, kek FROM {keys} WHERE contract_id IN (%s, %s) "
            "ORDER BY 1, 2").format(keys=SQL(keys.table))).as_string()
        self.select_many_statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version").format(
                schema=schema, events=events)
        # the one-statement write (see the module docstring); the lock timeout is the datastore's
        self.insert_function_name = events_table_name + "_insert"
        self.check_identifier_length(self.insert_function_name)
        function = Identifier(self.insert_function_name)
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(ids {id_type}[], versions bigint[], topics text[], "
            "states bytea[], hashes bytea[]) RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "PERFORM set_config('lock_timeout', {lock_timeout}, true); "
            "LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "INSERT INTO {schema}.{hashes} (originator_id, originator_version, hash) "
            "SELECT * FROM unnest(ids, versions, hashes); "
            "RETURN QUERY INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id; "
            "END; $BODY$").format(
                schema=schema, function=function, id_type=id_type, events=events, hashes=hashes,
                channel=Identifier(self.channel_name), lock_timeout=Literal(f"{self.datastore.lock_timeout}s")))
        self.insert_function_query = SQL("SELECT * FROM {schema}.{function}(%b, %b, %b, %b, %b) AS n(id)").format(
            schema=schema, function=function).as_string()
        self.orphans_statement = SQL(
            "SELECT originator_id, originator_version FROM {schema}.{hashes} h "
            "LEFT JOIN {schema}.{events} e USING (originator_id, originator_version) "
            "WHERE e.notification_id IS NULL ").format(schema=schema, events=events, hashes=hashes)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's select_events
    def select_events(self, originator_id: uuid.UUID | str, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        """The library's ``select_events`` (the same statement and parameters) with the statement's
        text built once per shape: the library composes it per call (``Composed`` of identifiers,
        turned into bytes on every execute: ~5 % of a GET's server time, issue 21). The whole
        history (a first load) is ``_select_history``'s one round trip, the events after a version
        ``_select_after``'s, each with the chain head."""
        if lte is None and not desc and limit is None:
            return self._select_history(originator_id) if gt is None else self._select_after(originator_id, gt)
        return self._select_shaped(originator_id, gt, lte, desc, limit)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True) -> Sequence[Notification]:
        """The library's ``select_notifications`` (the same statement, parameters and rows) for the
        projection runner's read of each batch (from ``start``, no stop, no topics), with the
        statement's text made once and tuple rows: the library composes it on every call (issue 21:
        a batch of one or two events at 16 clients). Any other shape is the library's."""
        if start is None or stop is not None or topics or not inclusive_of_start:
            found: Sequence[Notification] = super().select_notifications(start, limit, stop, topics,
                                                                         inclusive_of_start=inclusive_of_start)
            return found
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.notifications_query, (start, limit), prepare=True)
            return [Notification(id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3],
                                 state=bytes(row[4])) for row in curs.fetchall()]

    def _select_after(self, originator_id: uuid.UUID | str, gt: int) -> list[StoredEvent]:
        """The events after version ``gt``, their chain head remembered by the linker (a committed
        row never changes): one round trip (``after_query``)."""
        oid = originator_id if isinstance(originator_id, uuid.UUID) else uuid.UUID(str(originator_id))
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.after_query, (oid, gt, oid, gt), prepare=True)
            rows = curs.fetchall()
        events: list[StoredEvent] = []
        for part, version, topic, state in rows:
            if part == 0:
                events.append(StoredEvent(originator_id=originator_id, originator_version=version,
                                          topic=topic, state=bytes(state)))
            else:
                self.linker.remember([(oid, version, bytes(state))])
        return events

    def _select_shaped(self, originator_id: uuid.UUID | str, gt: int | None, lte: int | None, desc: bool,
                       limit: int | None) -> list[StoredEvent]:
        shape = (gt is not None, lte is not None, desc, limit is not None)
        query = self._select_events_queries.get(shape)
        if query is None:
            statement = self.select_events_statement
            if gt is not None:
                statement += SQL(" AND originator_version > %s")
            if lte is not None:
                statement += SQL(" AND originator_version <= %s")
            statement += SQL(" ORDER BY originator_version") + SQL(" DESC" if desc else " ASC")
            if limit is not None:
                statement += SQL(" LIMIT %s")
            query = self._select_events_queries[shape] = statement.as_string()
        params: list[Any] = [originator_id]
        if gt is not None:
            params.append(gt)
        if lte is not None:
            params.append(lte)
        if limit is not None:
            params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, params, prepare=True)
            return [StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                                topic=row["topic"], state=bytes(row["state"])) for row in curs.fetchall()]

    def _select_history(self, originator_id: uuid.UUID | str) -> list[StoredEvent]:
        """Every event of one aggregate, and in the same statement what its first command would
        read next, one round trip each (issue 21): its chain head (remembered by the linker, as
        after a write: a committed row never changes) and, when the key cache lacks them, the
        aggregate's two keys (records and contacts, ``application.audit.key_id``; rows of an
        aggregate without keys are simply absent)."""
        oid = originator_id if isinstance(originator_id, uuid.UUID) else uuid.UUID(str(originator_id))
        keys = self.keys
        query = self.history_query
        params: tuple[uuid.UUID, ...] = (oid, oid)
        if keys is not None and keys.wanted(oid):
            query, params = self.history_keys_query, (oid, oid, oid, key_id(oid, CONTACTS_KEY))
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(query, params, prepare=True, binary=self.history_binary)
            rows = curs.fetchall()
        events: list[StoredEvent] = []
        key_rows: list[dict[str, Any]] = []
        for part, version, topic, state, contract_id, kek in rows:
            if part == 0:
                events.append(StoredEvent(originator_id=originator_id, originator_version=version,
                                          topic=topic, state=bytes(state)))
            elif part == 1:
                self.linker.remember([(oid, version, bytes(state))])
            else:
                key_rows.append({"contract_id": contract_id, "key": state, "kek": kek})
        if key_rows and keys is not None:
            keys.remember_rows(key_rows)
        return events

    def select_events_of(self, originator_ids: Sequence[uuid.UUID]) -> list[StoredEvent]:
        """Every event of many aggregates in ONE query (by aggregate, then version), and their
        contract keys into the key cache in one more: a chunk of the sweep costs two round trips,
        not two per contract (``application.service.BulkEventReader``)."""
        with self.datastore.get_connection() as conn, conn.cursor() as c:
            c.execute(self.select_many_statement, (list(originator_ids),), prepare=True)
            events = [StoredEvent(originator_id=r["originator_id"], originator_version=r["originator_version"],
                                  topic=r["topic"], state=bytes(r["state"])) for r in c.fetchall()]
        prefetch_keys_of(self.keys, events)
        return events

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Events only: one statement (``_insert_in_one_statement``). Otherwise the library's
        ``insert_events``; once it has committed, the chain heads and destroyed keys it wrote are
        remembered in this process (the library has no after-commit hook)."""
        if (stored_events and all(value is None for value in kwargs.values())
                and (self.keys is None or not keys_to_destroy(stored_events))):
            written: list[int] = self._insert_in_one_statement(stored_events)
            return written
        self._pending.links, self._pending.shred = [], []
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        self.linker.remember(self._pending.links)
        if self._pending.shred and self.keys is not None:
            self.keys.forget(self._pending.shred)
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's insert_events
    def _insert_in_one_statement(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """The chain links computed here (a chain head not cached is read first: a committed row
        never changes, and a concurrent write of the same version fails on the primary key), then
        the database function: lock, notify, hashes, events, in one statement and transaction."""
        links = self.linker.link(stored_events, self._prev_hashes_read)
        by_key = {(oid, version): digest for oid, version, digest in links}
        ids: list[uuid.UUID] = []
        versions: list[int] = []
        topics: list[str] = []
        states: list[bytes] = []
        hashes: list[bytes] = []
        for e in stored_events:  # the events' own order: their notification ids follow it
            oid = e.originator_id if isinstance(e.originator_id, uuid.UUID) else uuid.UUID(str(e.originator_id))
            ids.append(oid)
            versions.append(e.originator_version)
            topics.append(e.topic)
            states.append(e.state)
            hashes.append(by_key[(oid, e.originator_version)])
        # the five arrays in the binary wire format, packed in one pass (not psycopg's per-call list adaptation)
        params = (packed.uuids(ids), packed.bigints(versions), packed.texts(topics), packed.byteas(states),
                  packed.byteas(hashes))
        # tuple rows: a dict row's maker reads the result's column names on every execute (issue 21)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.insert_function_query, params, prepare=True)
            notification_ids = [row[0] for row in curs.fetchall()]
        if len(notification_ids) != len(stored_events):
            raise ProgrammingError(f"Couldn't get all notification IDs (got {len(notification_ids)}, "
                                   f"expected {len(stored_events)})")
        self.linker.remember(links)
        return notification_ids

    def _prev_hashes_read(self, need: list[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], bytes]:
        with self.datastore.get_connection() as conn:
            return self._prev_hashes(conn, need)

    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        """The library's hook, in the insert's transaction and pipeline, before the library locks the
        table and inserts the events: the chain hashes (one statement) and, for ``DataDeleted``,
        the destruction of the contract's key."""
        super()._insert_events(curs, stored_events, **kwargs)  # e.g. a process recorder's tracking row
        self._pending.links, self._pending.shred = [], []
        if not stored_events:
            return
        conn = curs.connection
        links = self.linker.link(stored_events, lambda need: self._prev_hashes(conn, need))
        rows = sorted(links)  # one order for every writer: concurrent conflicting batches cannot deadlock
        with conn.pipeline() as pipeline:  # nested in the library's pipeline
            curs.execute(self.insert_hashes_statement, ([oid for oid, _, _ in rows], [v for _, v, _ in rows],
                                                        [h for _, _, h in rows]))
            # A conflict (a concurrent write of the same version) surfaces here, before the library
            # queues its lock, NOTIFY and insert: psycopg would take a statement first prepared in an
            # aborted pipeline segment for prepared ("prepared statement _pg3_N does not exist" on the
            # connection's next use).
            pipeline.sync()
        shred = sorted(keys_to_destroy(stored_events)) if self.keys is not None else []
        if shred and self.keys is not None:
            self.keys.destroy_in(curs, shred)
        self._pending.links, self._pending.shred = links, shred

    def _prev_hashes(self, conn: Connection[DictRow],
                     need: list[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], bytes]:
        with conn.cursor() as c:
            c.execute(self.select_hashes_statement, ([oid for oid, _ in need], [v for _, v in need]))
            return {(uuid.UUID(str(r["originator_id"])), r["originator_version"]): bytes(r["hash"])
                    for r in c.fetchall()}

    # -- application.audit.ChainStore --------------------------------------------------------
    def chain_rows(self, originator_id: uuid.UUID | None, after: tuple[uuid.UUID, int] | None,
                   limit: int) -> Sequence[ChainRow]:
        where: list[SQL] = []
        params: list[Any] = []
        if originator_id is not None:
            where.append(SQL("originator_id = %s"))
            params.append(originator_id)
        if after is not None:
            where.append(SQL("(originator_id, originator_version) > (%s, %s)"))
            params += [after[0], after[1]]
        statement: Composed = self.rows_statement
        if where:
            statement += SQL("WHERE ") + SQL(" AND ").join(where)
        statement += SQL(" ORDER BY originator_id, originator_version LIMIT %s")
        return self._rows(statement, [*params, limit])

    def log_rows(self, after_position: int, limit: int) -> Sequence[ChainRow]:
        return self._rows(self.rows_statement + SQL("WHERE e.notification_id > %s "
                                                    "ORDER BY e.notification_id LIMIT %s"), [after_position, limit])

    def orphan_hashes(self, originator_id: uuid.UUID | None, limit: int) -> Sequence[tuple[uuid.UUID, int]]:
        statement, params = self.orphans_statement, []
        if originator_id is not None:
            statement += SQL("AND originator_id = %s ")
            params.append(originator_id)
        with self.datastore.get_connection() as conn, conn.cursor() as c:
            c.execute(statement + SQL("ORDER BY 1, 2 LIMIT %s"), [*params, limit])
            return [(uuid.UUID(str(r["originator_id"])), r["originator_version"]) for r in c.fetchall()]

    def _rows(self, statement: Composed, params: list[Any]) -> list[ChainRow]:
        with self.datastore.get_connection() as conn, conn.cursor() as c:
            c.execute(statement, params)
            return [ChainRow(r["position"], uuid.UUID(str(r["originator_id"])), r["originator_version"],
                             r["topic"], bytes(r["state"]), bytes(r["hash"]) if r["hash"] is not None else None)
                    for r in c.fetchall()]


class ChainedPostgresProcessRecorder(ChainedPostgresApplicationRecorder, es_pg.PostgresProcessRecorder):
    """A process recorder (events and a tracking row in one transaction) with the hash chain: the
    library's process recorder inserts its tracking row in the same ``_insert_events`` hook."""
