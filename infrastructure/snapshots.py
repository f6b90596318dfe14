"""Snapshots for as-of reads (issue 7: an auditor's "state as of an instant" in a few ms).

``repository.get(id, version=v)`` replays every event up to ``v``: a contract with ten years
of monthly history is ~250 events, too slow for the auditor's as-of reads. Snapshots are kept
OFF the command path (the library's ``snapshotting_intervals`` would take one inside
``save()``, at the cost of a ``repository.get`` there, and the library's snapshots would store
personal data in clear, which the factories refuse):

* ``take_snapshots(app, ids)`` (a background job) stores the contract's state at every
  ``SNAPSHOT_EVERY``-th version (10) in ``<schema>.contracts_snapshots``; it is incremental
  (each snapshot is built from the previous one) and idempotent.
* a snapshot is the contract's state dict encoded by the application's transcoder (JSON through
  the registered transcodings, ``application.aggregate_state``; nothing read from the database
  is unpickled, issue 14), compressed, sealed as a whole with the contract's own key (AES-GCM,
  associated data naming the contract and version): personal data is never stored in clear, a
  destroyed key (crypto-shredding) makes its snapshots unreadable, a tampered row fails
  authentication, and a row that does not decode to a state is reported. Either way the read
  falls back to replaying the events.
* snapshots carry the state's schema version (``STATE_SCHEMA_VERSION``, in the column still
  named ``fingerprint``), which changes only when the state's shape does; a snapshot of an older
  version is upcast by ``UPCASTERS`` (the library's ``upcast_vN_vN+1`` model) or, without one,
  ignored (replayed instead) until retaken. Editing the domain's code otherwise (a comment, a
  rule) keeps every snapshot valid.
* only historical reads use them (``SnapshotStore.get_contract``, used by
  ``ReadModelsImpl.contract_as_of``); commands load the current state as before.

PostgreSQL only; on SQLite (small embedded stores) ``open_snapshots`` returns ``None``.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Composed, Identifier

from application.aggregate_state import (
    STATE_SCHEMA_VERSION,
    contract_attributes,
    decode_state,
    encode_state,
    private_copy,
    restore,
)
from application.audit import CONTACTS_KEY, key_id
from domain.contract import Contract

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = 10  # 10 years of monthly history: 25 snapshots of ~4.5 KB, at most 9 events replayed
TABLE_SUFFIX = "_snapshots"
MAX_STATE_BYTES = 64 * 1024 * 1024  # a 10-year contract's state is ~100 KB
OPENED_BYTES = 16 * 1024 * 1024  # opened snapshots kept per process, by their JSON's size (~2.5x that in objects)


def schema_stamp(version: int) -> str:
    return f"contract-state-v{version}"


def _upcast_v1_v2(state: dict[str, Any]) -> None:
    """Issue 15 split retention: a readable version-1 snapshot has a live key, so neither the stored
    data nor the contractor data was deleted yet and no contacts were erased on request."""
    state.update(stored_data_deleted_on=None, contractor_erased_on=None, contacts_erased_on=None)


def _upcast_v3_v4(state: dict[str, Any]) -> None:
    """Rule book 7 payment reminders: no version-3 state had recorded one (the event came with v4)."""
    state.update(payment_reminders=set())


# Upcasters of a stored state, from version N to N+1 (key N): each changes the state dict in place,
# as the library's ``upcast_vN_vN+1`` methods do.
UPCASTERS: dict[int, Callable[[dict[str, Any]], None]] = {1: _upcast_v1_v2, 3: _upcast_v3_v4}


def readable_versions() -> list[int]:
    """The schema versions whose snapshots can be read: the current one, and older ones from which
    every upcaster up to it exists."""
    versions = [STATE_SCHEMA_VERSION]
    while versions[-1] - 1 in UPCASTERS:
        versions.append(versions[-1] - 1)
    return versions


SCHEMA_STAMP = schema_stamp(STATE_SCHEMA_VERSION)
READABLE = [schema_stamp(v) for v in readable_versions()]


class _Restore:
    """A snapshot as the repository folds it: ``mutate`` returns the restored aggregate."""

    def __init__(self, aggregate: Contract) -> None:
        self.aggregate = aggregate
        self.originator_id = aggregate.id
        self.originator_version = aggregate.version

    def mutate(self, _: Any) -> Contract:
        return self.aggregate


class OpenedSnapshots:
    """Snapshots this process has opened, kept decoded (issue 21, target 5): opening one costs
    ~20 us per event of history (a 10-year contract's ~4 ms: AES-GCM, zlib, decoding ~1,800
    transcoded values and ~1,200 dataclasses), a private copy of the opened state ~0.7 ms. An
    entry is used only for the same row (its sealed bytes and schema stamp) opened with the same
    key, and only after the caller's key checks (a destroyed key or erased contacts still refuse
    it, and drop every state kept for that contract: ``discard``); it is never handed out, only a
    copy of it. Bounded by the opened JSON's size, least recently used first out."""

    def __init__(self, budget: int = OPENED_BYTES) -> None:
        self.budget = budget
        self.size = 0
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[uuid.UUID, int], tuple[str, bytes, bytes, int, Contract]] = OrderedDict()
        self._versions: dict[uuid.UUID, set[int]] = {}  # the kept versions of each contract (``discard``)

    def get(self, contract_id: uuid.UUID, version: int, stamp: str, sealed: bytes, key: bytes) -> Contract | None:
        """A private copy of the contract opened from this very row with this key, or ``None``."""
        with self._lock:
            item = self._items.get((contract_id, version))
            if item is None or item[0] != stamp or item[1] != sealed or item[2] != key:
                return None
            self._items.move_to_end((contract_id, version))
        return private_copy(item[4])

    def put(self, contract_id: uuid.UUID, version: int, stamp: str, sealed: bytes, key: bytes, size: int,
            contract: Contract) -> None:
        """Keep ``contract`` (opened from the row; the caller keeps no reference to mutate it)."""
        if size > self.budget:
            return
        with self._lock:
            old = self._items.pop((contract_id, version), None)
            if old is not None:
                self.size -= old[3]
            self._items[(contract_id, version)] = (stamp, sealed, key, size, contract)
            self._versions.setdefault(contract_id, set()).add(version)
            self.size += size
            while self.size > self.budget:
                (dropped_id, dropped_version), dropped = self._items.popitem(last=False)
                self._unindex(dropped_id, dropped_version)
                self.size -= dropped[3]

    def discard(self, contract_id: uuid.UUID) -> None:
        """Forget every state opened for ``contract_id``: its key or contacts key is destroyed
        (crypto-shredding, rule book 10), so the personal data they hold in clear must not stay in
        this process's memory either."""
        with self._lock:
            for version in self._versions.pop(contract_id, ()):
                item = self._items.pop((contract_id, version), None)
                if item is not None:
                    self.size -= item[3]

    def versions(self, contract_id: uuid.UUID) -> list[int]:
        """The versions of ``contract_id`` kept opened (ascending)."""
        with self._lock:
            return sorted(self._versions.get(contract_id, ()))

    def _unindex(self, contract_id: uuid.UUID, version: int) -> None:
        versions = self._versions.get(contract_id)
        if versions is not None:
            versions.discard(version)
            if not versions:
                del self._versions[contract_id]

    def __len__(self) -> int:
        return len(self._items)


class SnapshotStore:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.opened = OpenedSnapshots()
        self.datastore = app.recorder.datastore
        self.keys = app.factory.keys
        schema = Identifier(self.datastore.schema)
        table = Identifier(app.recorder.events_table_name.removesuffix("_events") + TABLE_SUFFIX)
        self.create_sql = SQL("CREATE TABLE IF NOT EXISTS {}.{} (originator_id uuid NOT NULL, "
                              "originator_version bigint NOT NULL, fingerprint text NOT NULL, state bytea NOT NULL, "
                              "PRIMARY KEY (originator_id, originator_version))").format(schema, table)
        self.select_sql = SQL("SELECT originator_version, fingerprint, state FROM {}.{} WHERE originator_id = %s "
                              "AND fingerprint = ANY(%s) AND originator_version <= %s "
                              "ORDER BY originator_version DESC LIMIT 1").format(schema, table)
        # the nearest snapshot and the events after it up to the version, in ONE round trip; the
        # version is given (%(v)s), or found in the read side's event times (same schema) by instant
        as_of = ("WITH s AS (SELECT originator_version, fingerprint, state FROM {schema}.{table} "
                 "WHERE originator_id = %(id)s AND fingerprint = ANY(%(fp)s) AND originator_version <= {v} "
                 "ORDER BY originator_version DESC LIMIT 1) "
                 "SELECT 0 AS part, originator_version, fingerprint AS topic, state, {v} AS version FROM s UNION ALL "
                 "SELECT 1, e.originator_version, e.topic, e.state, {v} FROM {schema}.{events} e "
                 "WHERE e.originator_id = %(id)s AND e.originator_version > COALESCE((SELECT originator_version "
                 "FROM s), 0) AND e.originator_version <= {v} ORDER BY 1, 2")
        names = {"schema": schema, "table": table, "events": Identifier(app.recorder.events_table_name)}
        self.as_of_sql = SQL(as_of).format(v=SQL("%(v)s"), **names)
        version_at = SQL(  # ReadTables.version_at: the version before the first event recorded after the instant
            "(SELECT COALESCE((SELECT MIN(version) - 1 FROM {schema}.rm_event_times WHERE originator_id = %(id)s "
            "AND recorded_at > %(at)s), (SELECT MAX(version) FROM {schema}.rm_event_times "
            "WHERE originator_id = %(id)s), 0))").format(schema=schema)
        self.as_of_instant_sql = SQL(as_of).format(v=version_at, **names)
        self.versions_sql = SQL("SELECT originator_version FROM {}.{} WHERE originator_id = %s "
                                "AND fingerprint = %s").format(schema, table)
        self.upsert_sql = SQL("INSERT INTO {}.{} (originator_id, originator_version, fingerprint, state) "
                              "VALUES (%s, %s, %s, %s) ON CONFLICT (originator_id, originator_version) DO UPDATE "
                              "SET fingerprint = excluded.fingerprint, state = excluded.state").format(schema, table)
        self.repository: Repository[uuid.UUID] = Repository(event_store=app.events,
                                                            snapshot_store=self)  # type: ignore[arg-type]

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(self.create_sql)

    # -- the repository's snapshot-store interface -----------------------------------------------
    def get(self, originator_id: uuid.UUID, *, gt: int | None = None, lte: int | None = None, desc: bool = False,
            limit: int | None = None) -> list[_Restore]:
        """The latest readable snapshot at or before ``lte`` (the only query the repository makes)."""
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(self.select_sql, (originator_id, READABLE, lte if lte is not None else 2**62),
                        prepare=True)
            row = cur.fetchone()
        if row is None:
            return []
        aggregate = self._open(originator_id, int(row["originator_version"]), str(row["fingerprint"]),
                               bytes(row["state"]))
        return [] if aggregate is None else [_Restore(aggregate)]

    def _open(self, originator_id: uuid.UUID, version: int, stamp: str, sealed: bytes) -> Contract | None:
        """The snapshot's contract, or ``None`` when it cannot be read (the caller replays instead)."""
        try:
            key = self.keys.key_for_reading(originator_id)
        except Exception:  # noqa: BLE001 - no usable key row (the key store reports why): replay instead
            self.opened.discard(originator_id)
            return None
        if key is None:  # shredded: the snapshot holds personal data in clear once opened; replay instead
            self.opened.discard(originator_id)  # nor kept opened in memory
            return None
        if self.keys.is_destroyed(key_id(originator_id, CONTACTS_KEY)):
            self.opened.discard(originator_id)
            return None  # contacts erased on request (privacy policy 7): an older snapshot may hold them
        opened = self.opened.get(originator_id, version, stamp, sealed, key)
        if opened is not None:
            return opened
        try:
            plain = _inflate(AESGCM(key).decrypt(sealed[:12], sealed[12:], _aad(originator_id, version)))
            state = decode_state(self.app.mapper.transcoder, plain)
            schema = int(stamp.rsplit("-v", 1)[1])
            while schema < STATE_SCHEMA_VERSION:
                UPCASTERS[schema](state)
                schema += 1
            if set(state) != contract_attributes():
                raise ValueError("not a contract's attributes")
            aggregate = restore(Contract, state)
        except InvalidTag:
            log.warning("snapshot of %s version %d does not authenticate (tampered, or sealed with another "
                        "key); replaying events instead", originator_id, version)
            return None
        except Exception:  # noqa: BLE001 - the row's content is not trusted: anything it makes fail is reported
            log.warning("snapshot of %s version %d does not decode to a contract state; replaying events "
                        "instead", originator_id, version)
            return None
        if aggregate.__dict__.get("_version") != version or aggregate.__dict__.get("_id") != originator_id:
            log.warning("snapshot of %s version %d holds another state; replaying events instead",
                        originator_id, version)
            return None
        self.opened.put(originator_id, version, stamp, sealed, key, len(plain), aggregate)
        return private_copy(aggregate)

    # -- reads ------------------------------------------------------------------------------------
    def get_contract(self, contract_id: uuid.UUID, version: int) -> Contract | None:
        """The contract at ``version`` from the nearest snapshot plus the events after it, read in
        one query (the library's repository would make two); an unreadable snapshot (shredded
        key, tampered row, other domain code) falls back to replaying every event."""
        return self._fold(contract_id, self.as_of_sql, {"id": contract_id, "fp": READABLE, "v": version})

    def contract_at(self, contract_id: uuid.UUID, at: datetime) -> Contract | None:
        """The contract as recorded by instant ``at`` (``ReadModels.contract_as_of``): the version
        lookup in the read side's event times, the snapshot and the events, all in one query;
        ``None`` if it did not exist yet."""
        return self._fold(contract_id, self.as_of_instant_sql, {"id": contract_id, "fp": READABLE, "at": at})

    def _fold(self, contract_id: uuid.UUID, sql: Composed, params: dict[str, Any]) -> Contract | None:
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(sql, params, prepare=True)
            rows = cur.fetchall()
        aggregate: Any = None
        if rows and rows[0]["part"] == 0:
            aggregate = self._open(contract_id, int(rows[0]["originator_version"]), str(rows[0]["topic"]),
                                   bytes(rows[0]["state"]))
            if aggregate is None:
                return self._replay(contract_id, int(rows[0]["version"]))
            rows = rows[1:]
        mapper = self.app.mapper
        for r in rows:
            stored = StoredEvent(originator_id=contract_id, originator_version=r["originator_version"],
                                 topic=r["topic"], state=bytes(r["state"]))
            aggregate = mapper.to_domain_event(stored).mutate(aggregate)
        return aggregate if isinstance(aggregate, Contract) else None

    def _replay(self, contract_id: uuid.UUID, version: int) -> Contract | None:
        try:
            aggregate: Any = self.repository.get(contract_id, version=version)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, Contract) else None

    # -- writes (a background job) ----------------------------------------------------------------
    def put(self, contract: Contract) -> bool:
        """Store ``contract`` as of its version; False if its key is destroyed (nothing stored)."""
        try:
            key = self.keys.key_for_writing(contract.id)
        except Exception:  # noqa: BLE001 - destroyed key: personal data may not be stored any more
            return False
        nonce = os.urandom(12)
        plain = zlib.compress(encode_state(self.app.mapper.transcoder, contract), 6)
        sealed = nonce + AESGCM(key).encrypt(nonce, plain, _aad(contract.id, contract.version))
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(self.upsert_sql, (contract.id, contract.version, SCHEMA_STAMP, sealed))
        return True

    def take(self, contract_id: uuid.UUID, every: int = SNAPSHOT_EVERY) -> int:
        """Snapshots at every ``every``-th version of the contract not stored yet; returns how many."""
        last = self.app.recorder.select_events(contract_id, desc=True, limit=1)
        if not last:
            return 0
        latest = int(last[0].originator_version)
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(self.versions_sql, (contract_id, SCHEMA_STAMP))
            have = {int(r["originator_version"]) for r in cur.fetchall()}
        taken = 0
        for version in range(every, latest + 1, every):
            if version in have:
                continue
            contract = self.get_contract(contract_id, version)
            if contract is None or not self.put(contract):
                break
            taken += 1
        return taken


def _inflate(data: bytes) -> bytes:
    """zlib-decompressed ``data``, refusing more than ``MAX_STATE_BYTES`` (a row is not trusted)."""
    inflater = zlib.decompressobj()
    plain = inflater.decompress(data, MAX_STATE_BYTES)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("snapshot state too large or truncated")
    return plain


def _aad(contract_id: uuid.UUID, version: int) -> bytes:
    return f"snapshot|{contract_id}|{version}".encode()


def open_snapshots(app: Any) -> SnapshotStore | None:
    """The snapshot store of ``app`` (table created if missing); ``None`` unless PostgreSQL."""
    from eventsourcing.postgres import PostgresFactory

    if not isinstance(app.factory, PostgresFactory) or getattr(app.factory, "keys", None) is None:
        return None
    store = SnapshotStore(app)
    store.create_table()
    return store


def take_snapshots(app: Any, contract_ids: Iterable[uuid.UUID], every: int = SNAPSHOT_EVERY) -> int:
    """The background job: snapshots for ``contract_ids`` (e.g. the read side's contract list)."""
    store = open_snapshots(app)
    if store is None:
        return 0
    return sum(store.take(cid, every) for cid in contract_ids)
