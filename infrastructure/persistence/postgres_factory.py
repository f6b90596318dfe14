"""``PERSISTENCE_MODULE=infrastructure.persistence.postgres_factory``: the library's
PostgreSQL store with the hash chain, per-contract keys and the personal-data mapper.

Tables (in ``POSTGRES_SCHEMA``): ``contracts_events`` (the library's),
``contracts_event_hashes`` (one chain hash per event) and ``contract_keys``.

The chain hashes are inserted in the library's insert transaction, in the same pipeline
as the events (no extra round trip); the previous hash of an aggregate comes from an
in-process cache of chain heads, or one indexed SELECT on a cache miss.
``POSTGRES_ENABLE_DB_FUNCTIONS`` is refused: that path bypasses the recorder (and the lock).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import eventsourcing.postgres as es_pg
from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.utils import Environment, EnvType
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from application.audit import SHRED_TOPIC
from application.ports import ChainRow
from infrastructure.persistence.chain import ChainLinker, Link
from infrastructure.persistence.sealed import SealedFactoryMixin
from infrastructure.personal_data import (
    PostgresKeyStore,
    iter_contract_ids,
    prefetch_keys_of,
)


class ChainedPostgresApplicationRecorder(es_pg.PostgresApplicationRecorder):
    def __init__(self, datastore: es_pg.PostgresDatastore, *, events_table_name: str = "stored_events",
                 keys: PostgresKeyStore | None = None) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
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
        # one statement for the events and their chain hashes (no extra statement on the hot path)
        self.insert_chained_statement = SQL(
            "WITH chained AS (INSERT INTO {schema}.{hashes} (originator_id, originator_version, hash) "
            "SELECT * FROM unnest(%s::{id_type}[], %s::bigint[], %s::bytea[])) "
            "INSERT INTO {schema}.{events} AS t (originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state "
            "FROM unnest(%s::{schema}.{stored_event_type}[]) RETURNING notification_id").format(
                schema=schema, hashes=hashes, events=events, id_type=id_type,
                stored_event_type=Identifier(self.stored_event_type_name))
        self.select_hashes_statement = SQL(
            "SELECT h.originator_id, h.originator_version, h.hash FROM {schema}.{hashes} h "
            "JOIN unnest(%s::{id_type}[], %s::bigint[]) AS k(originator_id, originator_version) "
            "USING (originator_id, originator_version)").format(schema=schema, hashes=hashes, id_type=id_type)
        self.rows_statement = SQL(
            "SELECT e.notification_id AS position, originator_id, originator_version, e.topic, e.state, h.hash "
            "FROM {schema}.{events} e LEFT JOIN {schema}.{hashes} h USING (originator_id, originator_version) "
        ).format(schema=schema, events=events, hashes=hashes)
        self.select_many_statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version").format(
                schema=schema, events=events)
        self.orphans_statement = SQL(
            "SELECT originator_id, originator_version FROM {schema}.{hashes} h "
            "LEFT JOIN {schema}.{events} e USING (originator_id, originator_version) "
            "WHERE e.notification_id IS NULL ").format(schema=schema, events=events, hashes=hashes)

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
        self._pending.links, self._pending.shred = [], []
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        links: list[Link] = self._pending.links
        shred: list[uuid.UUID] = self._pending.shred
        self.linker.remember(links)
        if shred and self.keys is not None:
            self.keys.forget(shred)
        return ids

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        """The library's steps (lock table, notify, insert events returning their ids on ``curs``)
        with the chain hashes inserted by the same statement."""
        conn = curs.connection
        links = self.linker.link(stored_events, lambda need: self._prev_hashes(conn, need))
        self._lock_table(curs)
        self._notify_channel(curs)
        events = [self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                  for e in stored_events]
        curs.execute(self.insert_chained_statement, ([oid for oid, _, _ in links], [v for _, v, _ in links],
                                                     [h for _, _, h in links], events))
        shred = list(iter_contract_ids(stored_events, SHRED_TOPIC)) if self.keys is not None else []
        if shred and self.keys is not None:
            with conn.cursor() as other:  # not ``curs``: the library fetches the notification ids from it
                self.keys.destroy_in(other, shred)
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


class Factory(SealedFactoryMixin, es_pg.PostgresFactory):
    """The one factory class of this module (``InfrastructureFactory.construct`` finds it)."""

    application_recorder_class = ChainedPostgresApplicationRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        if self.datastore.enable_db_functions:
            raise OSError("POSTGRES_ENABLE_DB_FUNCTIONS bypasses the hash chain: not supported")
        self._open_key_store(PostgresKeyStore)

    def application_recorder(self) -> ApplicationRecorder:
        from infrastructure.persistence import group_commit as gc

        prefix = self.env.name.lower() or "stored"
        group_commit, max_batch, linger = gc.group_commit_settings(self.env)  # issue 7: PG_GROUP_COMMIT, default on
        recorder: ChainedPostgresApplicationRecorder = (
            gc.GroupCommitPostgresApplicationRecorder(self.datastore, events_table_name=prefix + "_events",
                                                      keys=self.keys, max_batch=max_batch, linger=linger)
            if group_commit else
            ChainedPostgresApplicationRecorder(self.datastore, events_table_name=prefix + "_events", keys=self.keys))
        if self.env_create_table():
            recorder.create_table()
        return recorder
