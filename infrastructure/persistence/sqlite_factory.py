"""``PERSISTENCE_MODULE=infrastructure.persistence.sqlite_factory``: the library's SQLite
store with the hash chain, per-contract keys and the personal-data mapper.

Tables: ``stored_events`` (the library's), ``event_hashes`` (one chain hash per event,
written in the insert's transaction) and ``contract_keys``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import eventsourcing.sqlite as es_sqlite
from eventsourcing.persistence import ApplicationRecorder, ProcessRecorder, StoredEvent
from eventsourcing.utils import Environment, EnvType

from application.ports import ChainRow
from infrastructure.persistence.chain import ChainLinker, Link, refuse_text_ids
from infrastructure.persistence.sealed import SealedFactoryMixin
from infrastructure.personal_data import (
    SQLiteKeyStore,
    keys_to_destroy,
    prefetch_keys_of,
)


class ChainedSQLiteApplicationRecorder(es_sqlite.SQLiteApplicationRecorder):
    """The library's SQLite application recorder plus the hash chain and key destruction, in the
    insert's own transaction, through the library's hook ``_insert_events`` (as its
    ``examples/searchabletimestamps``). Refused on purpose: text originator ids (at construction)
    and versions below 1 (at insert, ``chain.UnchainableEvent``)."""

    def __init__(self, datastore: es_sqlite.SQLiteDatastore, events_table_name: str = "stored_events",
                 keys: SQLiteKeyStore | None = None, **kwargs: Any) -> None:
        refuse_text_ids(datastore.originator_id_type)
        self.hashes_table_name = "event_hashes" if events_table_name == "stored_events" \
            else f"{events_table_name}_hashes"
        super().__init__(datastore, events_table_name=events_table_name, **kwargs)
        self.keys = keys
        self.linker = ChainLinker()
        self._pending = threading.local()
        e, h = self.events_table_name, self.hashes_table_name
        self.insert_hashes_statement = f"INSERT INTO {h} (originator_id, originator_version, hash) VALUES (?,?,?)"
        self.select_hash_statement = f"SELECT hash FROM {h} WHERE originator_id=? AND originator_version=?"
        self.rows_statement = (
            f"SELECT e.rowid AS position, e.originator_id, e.originator_version, e.topic, e.state, h.hash "
            f"FROM {e} e LEFT JOIN {h} h "
            "ON h.originator_id = e.originator_id AND h.originator_version = e.originator_version ")
        self.orphans_statement = (
            f"SELECT h.originator_id, h.originator_version FROM {h} h LEFT JOIN {e} e "
            "ON h.originator_id = e.originator_id AND h.originator_version = e.originator_version "
            "WHERE e.originator_id IS NULL ")

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {self.hashes_table_name} (originator_id TEXT, "
                "originator_version INTEGER, hash BLOB NOT NULL, "
                "PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID"]

    def select_events_of(self, originator_ids: Sequence[uuid.UUID]) -> list[StoredEvent]:
        """Every event of many aggregates in one query per 500 (by aggregate, then version), and
        their contract keys into the key cache (``application.service.BulkEventReader``)."""
        events: list[StoredEvent] = []
        table = self.events_table_name
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(originator_ids), 500):  # SQLite limits the number of parameters
                part = [oid.hex for oid in originator_ids[start:start + 500]]
                marks = ", ".join("?" * len(part))
                c.execute(f"SELECT originator_id, originator_version, topic, state FROM {table} "
                          f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version", part)
                events += [StoredEvent(originator_id=self.convert_originator_id(r["originator_id"]),
                                       originator_version=r["originator_version"], topic=r["topic"],
                                       state=r["state"]) for r in c.fetchall()]
        prefetch_keys_of(self.keys, events)
        return events

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's ``insert_events``; once it has committed, the chain heads and destroyed keys
        it wrote are remembered in this process (the library has no after-commit hook)."""
        self._pending.links, self._pending.shred = [], []
        ids = super().insert_events(stored_events, **kwargs)
        links: list[Link] = self._pending.links
        shred: list[uuid.UUID] = self._pending.shred
        self.linker.remember(links)
        if shred and self.keys is not None:
            self.keys.forget(shred)
            self.keys.after_destroy()
        return ids

    def _insert_events(self, c: es_sqlite.SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        """The library's hook, in the insert's transaction: the events (the library's), then their
        chain hashes and, for ``DataDeleted``, the destruction of the contract's key."""
        self._pending.links, self._pending.shred = [], []
        ids = super()._insert_events(c, stored_events, **kwargs)
        if not stored_events:
            return ids
        links = self.linker.link(stored_events, lambda need: self._prev_hashes(c, need))
        c.executemany(self.insert_hashes_statement, [(oid.hex, v, h) for oid, v, h in links])
        shred = keys_to_destroy(stored_events) if self.keys is not None else []
        if shred and self.keys is not None:
            self.keys.destroy_in(c, shred)
        self._pending.links, self._pending.shred = links, shred
        return ids

    def _prev_hashes(self, c: es_sqlite.SQLiteCursor,
                     need: list[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], bytes]:
        found = {}
        for oid, version in need:
            c.execute(self.select_hash_statement, (oid.hex, version))
            row = c.fetchone()
            if row is not None:
                found[(oid, version)] = bytes(row["hash"])
        return found

    # -- application.audit.ChainStore --------------------------------------------------------
    def chain_rows(self, originator_id: uuid.UUID | None, after: tuple[uuid.UUID, int] | None,
                   limit: int) -> Sequence[ChainRow]:
        where: list[str] = []
        params: list[Any] = []
        if originator_id is not None:
            where.append("e.originator_id = ?")
            params.append(originator_id.hex)
        if after is not None:
            where.append("(e.originator_id, e.originator_version) > (?, ?)")
            params += [after[0].hex, after[1]]
        sql = self.rows_statement + (f"WHERE {' AND '.join(where)} " if where else "")
        return self._rows(sql + "ORDER BY e.originator_id, e.originator_version LIMIT ?", [*params, limit])

    def log_rows(self, after_position: int, limit: int) -> Sequence[ChainRow]:
        return self._rows(self.rows_statement + "WHERE e.rowid > ? ORDER BY e.rowid LIMIT ?",
                          [after_position, limit])

    def orphan_hashes(self, originator_id: uuid.UUID | None, limit: int) -> Sequence[tuple[uuid.UUID, int]]:
        sql, params = self.orphans_statement, []
        if originator_id is not None:
            sql += "AND h.originator_id = ? "
            params.append(originator_id.hex)
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql + "ORDER BY 1, 2 LIMIT ?", [*params, limit])
            return [(uuid.UUID(r[0]), r[1]) for r in c.fetchall()]

    def _rows(self, sql: str, params: list[Any]) -> list[ChainRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [ChainRow(r["position"], uuid.UUID(r["originator_id"]), r["originator_version"], r["topic"],
                             _blob(r["state"]), _blob(r["hash"]) if r["hash"] is not None else None)
                    for r in c.fetchall()]


def _blob(value: Any) -> bytes:
    """SQLite is dynamically typed: an edited row may hold TEXT where a BLOB was written."""
    return value.encode() if isinstance(value, str) else bytes(value)


class ChainedSQLiteProcessRecorder(ChainedSQLiteApplicationRecorder, es_sqlite.SQLiteProcessRecorder):
    """A process recorder (events and a tracking row in one transaction) with the hash chain: the
    library's process recorder inserts its tracking row in the same ``_insert_events`` hook."""


class Factory(SealedFactoryMixin, es_sqlite.SQLiteFactory):
    """The one factory class of this module (``InfrastructureFactory.construct`` finds it)."""

    application_recorder_class = ChainedSQLiteApplicationRecorder
    process_recorder_class = ChainedSQLiteProcessRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self._open_key_store(SQLiteKeyStore)

    def application_recorder(self) -> ApplicationRecorder:
        recorder = ChainedSQLiteApplicationRecorder(self.datastore, keys=self.keys)
        if self.env_create_table():
            recorder.create_table()
        return recorder

    def process_recorder(self) -> ProcessRecorder:
        """The library's process recorder with the hash chain (no event is stored unchained)."""
        recorder = ChainedSQLiteProcessRecorder(self.datastore, keys=self.keys)
        if self.env_create_table():
            recorder.create_table()
        return recorder
