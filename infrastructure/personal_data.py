"""Crypto-shredding (spec 10): personal fields are sealed with a key per contract.

* ``KeyStore`` keeps one random 256-bit AES key per contract in its own table
  ``contract_keys`` next to the events (SQLite or PostgreSQL). With ``CONTRACTS_MASTER_KEY``
  set (base64 of 32 bytes) the keys are stored wrapped by it (AES-GCM), so a copy of the
  database alone reveals nothing, and a key row without that wrap is refused (logged once per
  contract, never used: someone with write access to the table could have made it).
  Destroying a key sets it to NULL and stamps ``destroyed_at``; the row stays as a tombstone,
  so a destroyed key is never re-created.
* ``PersonalDataMapper`` (an eventsourcing ``Mapper``) replaces the fields named in
  ``application.audit.PERSONAL_FIELDS`` (topics of ``domain.personal_data.PERSONAL_FIELDS``) by a ``Sealed`` envelope
  ``{"_type_":"sealed","_data_":{"kid":..., "enc": base64(nonce+ciphertext)}}`` when
  storing, and opens it when reading. The AES-GCM associated data binds each ciphertext to
  its event (aggregate, version, field). Once the key is destroyed the fields read as
  ``domain.personal_data.ERASED`` while every other attribute (amounts, dates) replays as before.
* A contractor document is sealed in two parts under two keys of the contract (issue 15):
  ``records`` (name, address: the invoice recipient, kept for the records period) under the
  key whose id is the contract id (the one key of older stores), and ``contacts`` under a key
  with a derived id (``application.audit.key_id``), so a privacy request can erase the
  contacts at once. Stored as ``{"records": Sealed, "contacts": Sealed}``.
* Keys are destroyed by the recorder, in the transaction that stores the event that says so
  (``application.audit.SHREDS``: ``ContractorDataErased`` both keys, ``PrivacyRequestAnswered``
  the contacts key, the old ``DataDeleted`` both), so "erased" and "unreadable" never disagree.
* Events written before the split hold the whole contractor document under the records key:
  once the contacts key is destroyed, their contact fields are dropped on reading too (the
  ciphertext itself goes when the records key is destroyed).

Keys are cached in memory for ``KEY_CACHE_SECONDS`` (env ``CONTRACTS_KEY_CACHE_SECONDS``,
default 30): a key destroyed by *another* process stops decrypting here within that time;
a key destroyed by this process stops at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    JSONTranscoder,
    Mapper,
    PersistenceError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic

from application.audit import (
    CONTACTS_KEY,
    PERSONAL_FIELDS,
    RECORDS_KEY,
    SHREDS,
    SPLIT_FIELDS,
    Sealed,
    SealedAsDict,
    key_id,
)
from application.undecodable import UndecodableEvent, reason_of
from domain.personal_data import ERASED_CONTACTS, erased_value
from domain.retention import split_contractor
from infrastructure.settings import MASTER_KEY_RULE, decode_master_key

KEYS_TABLE = "contract_keys"
logger = logging.getLogger(__name__)


class ContractKeyError(PersistenceError):
    """A contract key is missing, destroyed (when writing) or cannot be unwrapped."""


def parse_master_key(text: str | None) -> bytes | None:
    """``CONTRACTS_MASTER_KEY``: base64 (standard or URL-safe) of exactly 32 bytes (the rule is
    ``infrastructure.settings.decode_master_key``'s; ``Settings`` already refused a bad one)."""
    try:
        return decode_master_key(text)
    except ValueError:
        raise ValueError(f"CONTRACTS_MASTER_KEY {MASTER_KEY_RULE}") from None


class KeyStore:
    """Per-contract data keys in ``contract_keys`` (dialect-specific SQL in subclasses)."""

    placeholder = "?"

    def __init__(self, datastore: Any, master_key: bytes | None = None, cache_seconds: float = 30.0) -> None:
        self.datastore = datastore
        self._master = AESGCM(master_key) if master_key else None
        self._kek_id = hashlib.sha256(master_key).hexdigest()[:16] if master_key else None
        self._cache: dict[uuid.UUID, tuple[bytes | None, float]] = {}
        self._refused_ids: set[uuid.UUID] = set()  # unwrapped rows already reported
        self._absent: dict[uuid.UUID, float] = {}  # ids known to have no row (contacts of older events)
        self._lock = threading.Lock()
        self.cache_seconds = cache_seconds
        self.table = self.qualified(KEYS_TABLE)
        p = self.placeholder
        self.select_sql = f"SELECT key, kek, destroyed_at FROM {self.table} WHERE contract_id = {p}"
        self.insert_sql = (f"INSERT INTO {self.table} (contract_id, key, kek, created_at) "
                           f"VALUES ({p}, {p}, {p}, CURRENT_TIMESTAMP) ON CONFLICT (contract_id) DO NOTHING")
        self.destroy_sql = (f"INSERT INTO {self.table} (contract_id, key, kek, created_at, destroyed_at) "
                            f"VALUES ({p}, NULL, NULL, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) "
                            "ON CONFLICT (contract_id) DO UPDATE SET key = NULL, kek = NULL, "
                            "destroyed_at = CURRENT_TIMESTAMP")

    # -- dialect ------------------------------------------------------------------------------
    def qualified(self, name: str) -> str:
        return name

    def create_table_sql(self) -> list[str]:
        raise NotImplementedError

    def db_id(self, contract_id: uuid.UUID) -> Any:
        return contract_id

    def py_id(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    def select_many_sql(self, count: int) -> str:
        marks = ", ".join([self.placeholder] * count)
        return f"SELECT contract_id, key, kek, destroyed_at FROM {self.table} WHERE contract_id IN ({marks})"

    def many_params(self, contract_ids: Sequence[uuid.UUID]) -> Sequence[Any]:
        return [self.db_id(cid) for cid in contract_ids]

    def transaction(self, commit: bool) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=commit)  # type: ignore[no-any-return]

    def create_table(self) -> None:
        with self.transaction(commit=True) as c:
            for statement in self.create_table_sql():
                c.execute(statement)

    # -- keys ---------------------------------------------------------------------------------
    def key_for_writing(self, contract_id: uuid.UUID) -> bytes:
        """The contract's key, created on first use. Refuses a destroyed key."""
        key = self._cached(contract_id)
        if key is not None:
            return key
        found, row = self._read(contract_id)
        if not found:
            new = AESGCM.generate_key(bit_length=256)
            with self.transaction(commit=True) as c:
                c.execute(self.insert_sql, (self.db_id(contract_id), self._wrap(contract_id, new), self._kek_id))
                c.execute(self.select_sql, (self.db_id(contract_id),))
                row = c.fetchone()
        key = self._unwrap(contract_id, row)
        if key is None:
            raise ContractKeyError(f"the key of contract {contract_id} was destroyed: no personal data can be stored")
        self._remember(contract_id, key)
        return key

    def key_for_reading(self, contract_id: uuid.UUID) -> bytes | None:
        """The contract's key, or ``None`` once destroyed."""
        with self._lock:
            hit = self._cache.get(contract_id)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        found, row = self._read(contract_id)
        if not found:
            raise ContractKeyError(f"no key is recorded for contract {contract_id} (key table lost or not restored?)")
        key = self._unwrap(contract_id, row)
        self._remember(contract_id, key)
        return key

    def is_destroyed(self, contract_id: uuid.UUID) -> bool:
        """Whether the key ``contract_id`` was destroyed (False when it never existed)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(contract_id)
            absent = self._absent.get(contract_id, 0.0) > now
        if hit is not None and hit[1] > now:
            return hit[0] is None
        if absent:
            return False
        found, row = self._read(contract_id)
        if not found:
            with self._lock:
                self._absent[contract_id] = now + self.cache_seconds
            return False
        key = self._unwrap(contract_id, row)
        self._remember(contract_id, key)
        return key is None

    def prefetch(self, contract_ids: Sequence[uuid.UUID]) -> None:
        """Read the keys of many contracts in ONE query into the cache (bulk loads: the sweep's
        chunks), instead of one round trip each on first use. Rows that do not unwrap are left to
        ``key_for_reading``, which raises for the contract concerned."""
        now = time.monotonic()
        with self._lock:
            missing = list(dict.fromkeys(cid for cid in contract_ids
                                         if (hit := self._cache.get(cid)) is None or hit[1] <= now))
        rows: list[Any] = []
        with self.transaction(commit=False) as c:
            for start in range(0, len(missing), 500):  # SQLite limits the number of parameters
                part = missing[start:start + 500]
                c.execute(self.select_many_sql(len(part)), self.many_params(part))
                rows += c.fetchall()
        self.remember_rows(rows)

    def wanted(self, contract_id: uuid.UUID) -> bool:
        """Whether the key ``contract_id`` is not in the cache (or its entry expired): a reader that
        can fetch key rows along with its own query (``select_events``' one round trip) does."""
        with self._lock:
            hit = self._cache.get(contract_id)
        return hit is None or hit[1] <= time.monotonic()

    def remember_rows(self, rows: Sequence[Any]) -> None:
        """Key rows (``contract_id``, ``key``, ``kek``) read by a caller's own query into the cache, as
        ``prefetch`` does with its own: a row that does not unwrap is left to ``key_for_reading``,
        which raises for the contract concerned."""
        for row in rows:
            cid = self.py_id(row["contract_id"])
            try:
                self._remember(cid, self._unwrap(cid, row))
            except ContractKeyError:
                continue

    def wrap_unwrapped_keys(self) -> int:
        """Wrap, with the master key, every key row stored without a wrap (keys created before
        ``CONTRACTS_MASTER_KEY`` was configured, which are refused while it is set). Run it once,
        deliberately, right after configuring the master key: it cannot tell such a row from one
        someone wrote into the table. Returns how many rows it wrapped."""
        if self._master is None:
            raise ContractKeyError("CONTRACTS_MASTER_KEY is not set: nothing to wrap the keys with")
        p = self.placeholder
        with self.transaction(commit=True) as c:
            c.execute(f"SELECT contract_id, key FROM {self.table} WHERE kek IS NULL AND key IS NOT NULL")
            rows = [(self.py_id(r["contract_id"]), bytes(r["key"])) for r in c.fetchall()]
            for cid, key in rows:
                c.execute(f"UPDATE {self.table} SET key = {p}, kek = {p} WHERE contract_id = {p} AND kek IS NULL",
                          (self._wrap(cid, key), self._kek_id, self.db_id(cid)))
        with self._lock:
            for cid, _ in rows:
                self._refused_ids.discard(cid)
                self._cache.pop(cid, None)
        return len(rows)

    def destroy_in(self, cursor: Any, contract_ids: Sequence[uuid.UUID]) -> None:
        """Destroy keys inside the caller's transaction (the one storing ``DataDeleted``)."""
        for cid in contract_ids:
            cursor.execute(self.destroy_sql, (self.db_id(cid),))

    def forget(self, contract_ids: Sequence[uuid.UUID]) -> None:
        """After the destroying transaction committed: this process reads them as destroyed."""
        with self._lock:
            for cid in contract_ids:
                self._cache[cid] = (None, time.monotonic() + 3600 * 24 * 365)
                self._absent.pop(cid, None)
        for cid in contract_ids:
            logger.info("key %s destroyed: the personal fields it sealed now read as erased", cid)

    def after_destroy(self) -> None:
        """Hook for the dialect to scrub physical remnants (best effort)."""

    def destroy(self, contract_ids: Sequence[uuid.UUID]) -> None:
        with self.transaction(commit=True) as c:
            self.destroy_in(c, contract_ids)
        self.forget(contract_ids)
        self.after_destroy()

    # -- helpers ------------------------------------------------------------------------------
    def _cached(self, contract_id: uuid.UUID) -> bytes | None:
        with self._lock:
            hit = self._cache.get(contract_id)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def _remember(self, contract_id: uuid.UUID, key: bytes | None) -> None:
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[contract_id] = (key, time.monotonic() + self.cache_seconds)

    def _read(self, contract_id: uuid.UUID) -> tuple[bool, Any]:
        with self.transaction(commit=False) as c:
            c.execute(self.select_sql, (self.db_id(contract_id),))
            row = c.fetchone()
        return row is not None, row

    def _refused(self, contract_id: uuid.UUID) -> ContractKeyError:
        """An unwrapped key row while ``CONTRACTS_MASTER_KEY`` is set: never used, reported once."""
        message = (f"the key row of contract {contract_id} is not wrapped by CONTRACTS_MASTER_KEY: refused, "
                   "the contract's personal fields are unreadable (check contract_keys for tampering, or "
                   "restore the row from a backup)")
        with self._lock:
            first = contract_id not in self._refused_ids
            self._refused_ids.add(contract_id)
        if first:
            logger.error(message)
        return ContractKeyError(message)

    def _wrap(self, contract_id: uuid.UUID, key: bytes) -> bytes:
        if self._master is None:
            return key
        nonce = os.urandom(12)
        return nonce + self._master.encrypt(nonce, key, b"contract-key:" + contract_id.bytes)

    def _unwrap(self, contract_id: uuid.UUID, row: Any) -> bytes | None:
        stored, kek = row["key"], row["kek"]
        if stored is None:
            return None
        stored = bytes(stored)
        if kek is None:
            if self._master is not None:  # issue 14: a row anyone with write access could have made
                raise self._refused(contract_id)
            return stored
        if self._master is None or kek != self._kek_id:
            raise ContractKeyError(f"the key of contract {contract_id} is wrapped by master key {kek}; "
                            "CONTRACTS_MASTER_KEY is missing or different")
        try:
            return self._master.decrypt(stored[:12], stored[12:], b"contract-key:" + contract_id.bytes)
        except InvalidTag:
            raise ContractKeyError(f"the key of contract {contract_id} does not unwrap (altered key row)") from None


class SQLiteKeyStore(KeyStore):
    def db_id(self, contract_id: uuid.UUID) -> Any:
        return contract_id.hex

    def create_table_sql(self) -> list[str]:
        return [f"CREATE TABLE IF NOT EXISTS {self.table} (contract_id TEXT PRIMARY KEY, key BLOB, kek TEXT, "
                "created_at TEXT NOT NULL, destroyed_at TEXT)"]

    def destroy_in(self, cursor: Any, contract_ids: Sequence[uuid.UUID]) -> None:
        cursor.execute("PRAGMA secure_delete = ON")  # overwrite the freed key bytes in the page
        super().destroy_in(cursor, contract_ids)

    def after_destroy(self) -> None:
        """Fold the WAL (which still holds the page written when the key was created) back into
        the database file and truncate it. Best effort: readers may keep some frames alive."""
        try:
            with self.datastore.get_connection(commit=True) as conn:
                conn.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except Exception as exc:  # the key is already destroyed; scrubbing must not fail the command
            logger.warning("WAL checkpoint after key destruction failed: %s", type(exc).__name__)


class PostgresKeyStore(KeyStore):
    placeholder = "%s"

    def select_many_sql(self, count: int) -> str:
        return f"SELECT contract_id, key, kek, destroyed_at FROM {self.table} WHERE contract_id = ANY(%s)"

    def many_params(self, contract_ids: Sequence[uuid.UUID]) -> Sequence[Any]:
        return [list(contract_ids)]

    def _read(self, contract_id: uuid.UUID) -> tuple[bool, Any]:
        """One statement on the library's autocommit connection: one round trip, where the read-only
        transaction of the base class is three (BEGIN, SELECT, ROLLBACK); a key re-read once its
        cache entry expired is on a command's path (issue 21)."""
        with self.datastore.get_connection() as conn, conn.cursor() as c:
            c.execute(self.select_sql, (contract_id,), prepare=True)
            row = c.fetchone()
        return row is not None, row

    def qualified(self, name: str) -> str:
        schema = self.datastore.schema.replace('"', '""')
        return f'"{schema}"."{name}"'

    def create_table_sql(self) -> list[str]:
        return [f"CREATE TABLE IF NOT EXISTS {self.table} (contract_id uuid PRIMARY KEY, key bytea, kek text, "
                "created_at timestamptz NOT NULL, destroyed_at timestamptz)"]


# --------------------------------------------------------------------------- mapper


class PersonalDataMapper(Mapper[uuid.UUID]):
    """Seals ``PERSONAL_FIELDS`` with the contract's key; reads them back or as erased."""

    def __init__(self, transcoder: Transcoder, compressor: Compressor | None = None,
                 cipher: Cipher | None = None, *, keys: KeyStore) -> None:
        if compressor is not None or cipher is not None:
            raise ValueError("COMPRESSOR_TOPIC / CIPHER_KEY are not supported with per-contract encryption")
        super().__init__(transcoder)
        if isinstance(transcoder, JSONTranscoder):
            transcoder.register(SealedAsDict())
        self.keys = keys

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fields = PERSONAL_FIELDS.get(get_topic(type(domain_event)))
        if not fields:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        present = [name for name in fields if state.get(name) is not None]  # None holds nothing personal
        if not present:
            return super().to_stored_event(domain_event)
        oid: uuid.UUID = domain_event.originator_id
        version: int = domain_event.originator_version
        for name in present:
            if name in SPLIT_FIELDS and isinstance(state[name], dict):
                records, contacts = split_contractor(state[name])
                parts = {RECORDS_KEY: records, CONTACTS_KEY: contacts} if contacts else {RECORDS_KEY: records}
                state[name] = {part: self._seal(key_id(oid, part), value, _aad(oid, version, f"{name}.{part}"))
                               for part, value in parts.items()}
            else:
                state[name] = self._seal(oid, state[name], _aad(oid, version, name))
        clone = object.__new__(type(domain_event))
        object.__setattr__(clone, "__dict__", state)
        return super().to_stored_event(clone)

    def prefetch(self, stored_events: Sequence[StoredEvent]) -> None:
        """Read the keys of these events' sealed fields in one query (bulk reads: verify's pages)."""
        prefetch_keys_of(self.keys, stored_events)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        """The library's decoding (one JSON decode), then the sealed fields opened in place.

        They are opened after the library's upcasting: an upcaster that reads a personal field
        would see the ``Sealed`` envelope (no event has one; add the opening there if one does).
        Stored bytes that do not decode raise ``UndecodableEvent`` naming the event (issue 14)."""
        try:
            domain_event = super().to_domain_event(stored_event)
        except Exception as exc:  # noqa: BLE001 - any failure of the stored bytes is the same fault
            raise UndecodableEvent(stored_event.originator_id, stored_event.originator_version,
                                   stored_event.topic, reason_of(exc)) from None
        if stored_event.topic not in PERSONAL_FIELDS:
            return domain_event
        state: dict[str, Any] = domain_event.__dict__
        sealed = [name for name, value in state.items()
                  if isinstance(value, Sealed) or (isinstance(value, dict) and value
                                                   and all(isinstance(v, Sealed) for v in value.values()))]
        # a personal field stored in clear before it was sealed (the payer's reference before
        # issue 14): it cannot be encrypted after the fact (events never change), but it reads as
        # erased once the contract's key is destroyed, like the sealed ones
        clear = [name for name in PERSONAL_FIELDS[stored_event.topic]
                 if name not in sealed and name not in SPLIT_FIELDS and state.get(name) not in (None, "")]
        if not sealed and not clear:
            return domain_event
        stored_id = stored_event.originator_id
        oid = stored_id if type(stored_id) is uuid.UUID else uuid.UUID(str(stored_id))
        version, topic = stored_event.originator_version, stored_event.topic
        try:
            key = self.keys.key_for_reading(oid)
        except ContractKeyError:
            if sealed:
                raise
            return domain_event
        if key is None:
            for name in clear:
                state[name] = erased_value(name)
        for name in sealed:
            value = state[name]
            if key is None:
                state[name] = erased_value(name)
            elif isinstance(value, Sealed):
                opened = self._open(key, value, oid, version, name, topic)
                contacts_gone = name in SPLIT_FIELDS and isinstance(opened, dict) and self.keys.is_destroyed(
                    key_id(oid, CONTACTS_KEY))
                if contacts_gone:  # an event older than the split: its contacts are dropped on reading
                    opened = {**split_contractor(opened)[0], **ERASED_CONTACTS}
                state[name] = opened
            else:
                state[name] = self._open_parts(key, value, oid, version, name, topic)
        return domain_event

    def _seal(self, kid: uuid.UUID, value: Any, aad: bytes) -> Sealed:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys.key_for_writing(kid)).encrypt(nonce, self.transcoder.encode(value), aad)
        return Sealed(kid.hex, base64.b64encode(nonce + sealed).decode())

    def _open_parts(self, records_key: bytes, parts: dict[str, Sealed], oid: uuid.UUID, version: int, name: str,
                    topic: str) -> dict[str, Any]:
        opened: dict[str, Any] = {}
        for part, sealed in parts.items():
            key = records_key if part == RECORDS_KEY else self.keys.key_for_reading(key_id(oid, part))
            if key is None:
                opened.update(ERASED_CONTACTS)
            else:
                opened.update(self._open(key, sealed, oid, version, f"{name}.{part}", topic))
        return opened

    def _open(self, key: bytes, sealed: Sealed, oid: uuid.UUID, version: int, name: str, topic: str) -> Any:
        try:
            raw = base64.b64decode(sealed.data)
            return self.transcoder.decode(AESGCM(key).decrypt(raw[:12], raw[12:], _aad(oid, version, name)))
        except (InvalidTag, ValueError, binascii.Error):
            raise UndecodableEvent(oid, version, topic, f"personal field {name!r} does not decrypt "
                                   "(altered ciphertext or wrong key)") from None


def _aad(oid: uuid.UUID, version: int, name: str) -> bytes:
    return f"{oid}|{version}|{name}".encode()


def master_key_from_env(env: Any) -> bytes | None:
    """``MASTER_KEY`` from an eventsourcing ``Environment`` (looked up as ``CONTRACTS_MASTER_KEY``)."""
    return parse_master_key(env.get("MASTER_KEY"))


def cache_seconds_from_env(env: Any) -> float:
    text = env.get("KEY_CACHE_SECONDS")
    return float(text) if text else 30.0


def keys_to_destroy(stored_events: Sequence[StoredEvent]) -> list[uuid.UUID]:
    """Ids of the keys that storing ``stored_events`` destroys (``application.audit.SHREDS``)."""
    return list(dict.fromkeys(_shredded(stored_events)))


def _shredded(stored_events: Sequence[StoredEvent]) -> Iterator[uuid.UUID]:
    for e in stored_events:
        for part in SHREDS.get(e.topic, ()):
            yield key_id(uuid.UUID(str(e.originator_id)), part)


def prefetch_keys_of(keys: KeyStore | None, stored_events: Sequence[StoredEvent], contacts: bool = True) -> None:
    """Warm the key cache for every aggregate among ``stored_events`` that has sealed fields;
    ``contacts=False``: their records keys only (a reader that opens no split ``contractor``: only
    that field's opening looks at the contacts key)."""
    if keys is not None:
        oids = list(dict.fromkeys(oid if type(oid := e.originator_id) is uuid.UUID else uuid.UUID(str(oid))
                                  for e in stored_events if e.topic in PERSONAL_FIELDS))
        keys.prefetch([*oids, *(key_id(oid, CONTACTS_KEY) for oid in oids)] if contacts else oids)
