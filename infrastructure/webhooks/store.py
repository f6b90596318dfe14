"""Webhook tables next to the events (SQLite file or PostgreSQL schema): endpoints, their log, the
delivery queue with its attempts, and the queue's tracking position (``application.notifications.ports``).

Both stores subclass the library's tracking recorders, as the read store does: a derived batch's
queue rows and the tracking position are committed in one transaction, after checking the
stored position (``StalePosition`` otherwise). Claims lease rows (``lease``, ``leased_until``):
on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so several senders never take the same row; on
SQLite inside ``BEGIN IMMEDIATE`` (one writer at a time). SQL is written once with ``?``
placeholders and the dialects' types; values always travel as parameters.
"""

from __future__ import annotations

import base64
import json
import secrets as random_tokens
import uuid
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Tracking

from application.notifications.ports import (
    ACTIVE,
    CANCELLED,
    DELETED,
    DELIVERED,
    PENDING,
    Attempt,
    Claimed,
    Delivery,
    Endpoint,
    EndpointLogEntry,
    QueueRow,
    Secrets,
)
from application.projections.ports import StalePosition

TRACKING_NAME = "contracts.webhooks"
TABLES = ("wh_attempts", "wh_deliveries", "wh_endpoint_log", "wh_endpoints")
ROW_COLUMNS = ("d.endpoint_id", "d.notification_id", "d.position", "d.type", "d.version", "d.ordering_key",
               "d.contract_id", "d.service", "d.occurred_at")
STATE_COLUMNS = ("d.status", "d.attempts", "d.next_attempt_at", "d.delivered_at", "d.last_status_code",
                 "d.last_error")
ENDPOINT_COLUMNS = ("endpoint_id", "url", "description", "event_types", "personal_data", "status", "disabled_reason",
                    "failing_since", "created_at", "updated_at", "created_position", "previous_expires_at")
_SQLITE_TS = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: text order is time order
CHUNK = 500


def ddl(t: dict[str, str]) -> list[str]:
    u, ts, big, n = t["uuid"], t["ts"], t["big"], t["prefix"]
    return [
        f"CREATE TABLE IF NOT EXISTS {n}wh_endpoints (endpoint_id {u} PRIMARY KEY, url TEXT NOT NULL, "
        f"description TEXT NOT NULL, event_types TEXT NOT NULL, personal_data {t['bool']} NOT NULL, "
        "status TEXT NOT NULL, "
        f"disabled_reason TEXT, failing_since {ts}, created_at {ts} NOT NULL, updated_at {ts} NOT NULL, "
        f"created_position {big} NOT NULL, secret TEXT, previous_secret TEXT, previous_expires_at {ts})",
        f"CREATE TABLE IF NOT EXISTS {n}wh_endpoint_log (endpoint_id {u} NOT NULL, seq {big} NOT NULL, "
        f"at {ts} NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL, "
        "PRIMARY KEY (endpoint_id, seq))",
        f"CREATE TABLE IF NOT EXISTS {n}wh_deliveries (endpoint_id {u} NOT NULL, notification_id {u} NOT NULL, "
        f"position {big} NOT NULL, type TEXT NOT NULL, version INTEGER NOT NULL, ordering_key {u} NOT NULL, "
        f"contract_id {u}, service TEXT, occurred_at {ts} NOT NULL, status TEXT NOT NULL, "
        "attempts INTEGER NOT NULL, failures INTEGER NOT NULL, "
        f"queued_at {ts} NOT NULL, next_attempt_at {ts}, first_attempt_at {ts}, lease TEXT, leased_until {ts}, "
        f"delivered_at {ts}, last_status_code INTEGER, last_error TEXT, PRIMARY KEY (endpoint_id, notification_id))"
        f"{t['deliveries_with']}",
        f"CREATE INDEX IF NOT EXISTS wh_deliveries_due ON {n}wh_deliveries (next_attempt_at, position) "
        "WHERE status = 'pending'",
        f"CREATE INDEX IF NOT EXISTS wh_deliveries_order ON {n}wh_deliveries (endpoint_id, ordering_key, position) "
        "WHERE status = 'pending'",
        f"CREATE INDEX IF NOT EXISTS wh_deliveries_endpoint ON {n}wh_deliveries (endpoint_id, position)",
        f"CREATE INDEX IF NOT EXISTS wh_deliveries_contract ON {n}wh_deliveries (contract_id, type)",
        f"CREATE INDEX IF NOT EXISTS wh_deliveries_type ON {n}wh_deliveries (type, occurred_at)",
        f"CREATE TABLE IF NOT EXISTS {n}wh_attempts (endpoint_id {u} NOT NULL, notification_id {u} NOT NULL, "
        f"attempt INTEGER NOT NULL, at {ts} NOT NULL, status_code INTEGER, latency_ms INTEGER NOT NULL, "
        "error TEXT, PRIMARY KEY (endpoint_id, notification_id, attempt))",
    ]


class SecretBox:
    """Endpoint secrets at rest: AES-GCM under ``CONTRACTS_MASTER_KEY`` when it is set (bound to the
    endpoint by the associated data), otherwise marked plain (like the contract keys without it)."""

    def __init__(self, master_key: bytes | None) -> None:
        self._aead = AESGCM(master_key) if master_key else None

    def seal(self, endpoint_id: uuid.UUID, secret: str) -> str:
        if self._aead is None:
            return "plain:" + secret
        nonce = random_tokens.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), str(endpoint_id).encode("ascii"))
        return "gcm1:" + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, endpoint_id: uuid.UUID, stored: str) -> str:
        kind, _, data = stored.partition(":")
        if kind == "plain":
            return data
        if kind != "gcm1" or self._aead is None:
            raise ValueError("an endpoint secret is sealed with a master key this process does not have")
        raw = base64.b64decode(data)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], str(endpoint_id).encode("ascii")).decode("utf-8")
        except InvalidTag:
            raise ValueError("an endpoint secret does not decrypt (wrong CONTRACTS_MASTER_KEY)") from None


class WebhookTables:
    """The queries over the webhook tables, parameterised by the dialect hooks below."""

    prefix = ""
    box: SecretBox = SecretBox(None)
    events_table: str | None = None  # the application's events, when in this store's schema (``notices_at_version``)

    # -- dialect hooks ---------------------------------------------------------------------------
    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A cursor for reads."""

    @abstractmethod
    def _begin(self) -> AbstractContextManager[Any]:
        """A write transaction (its cursor)."""

    @abstractmethod
    def _locked_position(self, cur: Any) -> int:
        """In ``cur``'s transaction: the queue's tracking position (0 when none), its row locked."""

    if TYPE_CHECKING:  # the library's tracking recorder, which every dialect's store also is
        def _insert_tracking(self, c: Any, tracking: Tracking) -> None: ...

    @contextmanager
    def _write(self, previous: int | None = None, position: int | None = None) -> Iterator[Any]:
        """A write transaction; with ``previous``, checks the tracking position and sets ``position``."""
        with self._begin() as cur:
            if previous is not None:
                current = self._locked_position(cur)
                if current != previous:
                    raise StalePosition(f"webhook queue is at {current}, batch starts after {previous}")
            yield cur
            if previous is not None and position is not None:
                self._insert_tracking(cur, Tracking(TRACKING_NAME, position))

    @abstractmethod
    def _sql(self, sql: str) -> Any:
        """``?`` placeholders -> the driver's."""

    skip_locked = ""  # PostgreSQL: FOR UPDATE OF d SKIP LOCKED

    def db_uuid(self, value: uuid.UUID | None) -> Any:
        return value

    def db_ts(self, value: datetime | None) -> Any:
        return value

    def db_bool(self, value: bool) -> Any:
        return value

    def py_uuid(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    def py_ts(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.strptime(str(value), _SQLITE_TS).replace(tzinfo=UTC)

    def _ts(self, value: Any) -> datetime:
        found = self.py_ts(value)
        assert found is not None
        return found

    def _exec(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns its row count."""
        cur.execute(self._sql(sql), list(params))
        return int(getattr(cur, "sqlite_cursor", cur).rowcount)

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read() as cur:
            self._exec(cur, sql, params)
            return [_tuple(r) for r in cur.fetchall()]

    # -- endpoints -------------------------------------------------------------------------------
    def _endpoint(self, r: tuple[Any, ...]) -> Endpoint:
        return Endpoint(endpoint_id=self.py_uuid(r[0]), url=r[1], description=r[2],
                        event_types=tuple(json.loads(r[3])), personal_data=bool(r[4]), status=r[5],
                        disabled_reason=r[6], failing_since=self.py_ts(r[7]), created_at=self._ts(r[8]),
                        updated_at=self._ts(r[9]), created_position=int(r[10]),
                        previous_secret_expires_at=self.py_ts(r[11]))

    def _log(self, cur: Any, endpoint_id: uuid.UUID, at: datetime, actor: str, action: str, detail: str) -> None:
        n = self.prefix
        self._exec(cur, f"INSERT INTO {n}wh_endpoint_log (endpoint_id, seq, at, actor, action, detail) "
                        "SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? "
                        f"FROM {n}wh_endpoint_log WHERE endpoint_id = ?",
                   (self.db_uuid(endpoint_id), self.db_ts(at), actor[:200], action, detail[:1000],
                    self.db_uuid(endpoint_id)))

    def insert_endpoint(self, endpoint: Endpoint, secret: str, actor: str) -> None:
        e = endpoint
        with self._write() as cur:
            n, cols = self.prefix, ", ".join(ENDPOINT_COLUMNS)
            self._exec(cur, f"INSERT INTO {n}wh_endpoints ({cols}, secret) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (self.db_uuid(e.endpoint_id), e.url, e.description, json.dumps(list(e.event_types)),
                        self.db_bool(e.personal_data), e.status, e.disabled_reason, self.db_ts(e.failing_since),
                        self.db_ts(e.created_at), self.db_ts(e.updated_at), e.created_position,
                        self.db_ts(e.previous_secret_expires_at), self.box.seal(e.endpoint_id, secret)))
            self._log(cur, e.endpoint_id, e.created_at, actor, "registered",
                      f"types {', '.join(e.event_types)}; personal_data={e.personal_data}")

    def get_endpoint(self, endpoint_id: uuid.UUID) -> Endpoint | None:
        n, cols = self.prefix, ", ".join(ENDPOINT_COLUMNS)
        rows = self._fetch(f"SELECT {cols} FROM {n}wh_endpoints "
                           "WHERE endpoint_id = ?", (self.db_uuid(endpoint_id),))
        return self._endpoint(rows[0]) if rows else None

    def list_endpoints(self, include_deleted: bool = False) -> list[Endpoint]:
        n, cols = self.prefix, ", ".join(ENDPOINT_COLUMNS)
        sql = f"SELECT {cols} FROM {n}wh_endpoints"
        params: list[Any] = []
        if not include_deleted:
            sql += " WHERE status <> ?"
            params.append(DELETED)
        return [self._endpoint(r) for r in self._fetch(sql + " ORDER BY created_at, endpoint_id", params)]

    def update_endpoint(self, endpoint: Endpoint, actor: str, action: str, detail: str) -> None:
        e, n = endpoint, self.prefix
        with self._write() as cur:
            self._exec(cur, f"UPDATE {n}wh_endpoints SET url = ?, description = ?, event_types = ?, personal_data = ?, "
                            "status = ?, disabled_reason = ?, failing_since = ?, updated_at = ? WHERE endpoint_id = ?",
                       (e.url, e.description, json.dumps(list(e.event_types)), self.db_bool(e.personal_data),
                        e.status, e.disabled_reason, self.db_ts(e.failing_since), self.db_ts(e.updated_at),
                        self.db_uuid(e.endpoint_id)))
            if e.status == DELETED:  # no secret outlives its endpoint; nothing more is sent to it
                self._exec(cur, f"UPDATE {n}wh_endpoints SET secret = NULL, previous_secret = NULL, "
                                "previous_expires_at = NULL WHERE endpoint_id = ?", (self.db_uuid(e.endpoint_id),))
                self._exec(cur, f"UPDATE {n}wh_deliveries SET status = ?, lease = NULL, leased_until = NULL "
                                "WHERE endpoint_id = ? AND status = ?",
                           (CANCELLED, self.db_uuid(e.endpoint_id), PENDING))
            self._log(cur, e.endpoint_id, e.updated_at, actor, action, detail)

    def roll_secret(self, endpoint_id: uuid.UUID, secret: str, previous_expires_at: datetime | None,
                    at: datetime, actor: str) -> None:
        n = self.prefix
        with self._write() as cur:
            c = "secret" if previous_expires_at is not None else "NULL"  # the current secret keeps signing, or not
            self._exec(cur, f"UPDATE {n}wh_endpoints SET previous_secret = {c}, previous_expires_at = ?, secret = ?, "
                            "updated_at = ? WHERE endpoint_id = ?",
                       (self.db_ts(previous_expires_at), self.box.seal(endpoint_id, secret), self.db_ts(at),
                        self.db_uuid(endpoint_id)))
            until = previous_expires_at.isoformat() if previous_expires_at else "no overlap"
            self._log(cur, endpoint_id, at, actor, "secret rolled", f"previous secret signs until {until}")

    def secrets(self, endpoint_id: uuid.UUID) -> Secrets | None:
        rows = self._fetch(f"SELECT secret, previous_secret, previous_expires_at FROM {self.prefix}wh_endpoints "
                           "WHERE endpoint_id = ?", (self.db_uuid(endpoint_id),))
        if not rows or rows[0][0] is None:
            return None
        current, previous, until = rows[0]
        return Secrets(self.box.open(endpoint_id, current),
                       None if previous is None else self.box.open(endpoint_id, previous), self.py_ts(until))

    def endpoint_log(self, endpoint_id: uuid.UUID) -> list[EndpointLogEntry]:
        rows = self._fetch(f"SELECT at, actor, action, detail FROM {self.prefix}wh_endpoint_log "
                           "WHERE endpoint_id = ? ORDER BY seq", (self.db_uuid(endpoint_id),))
        return [EndpointLogEntry(self._ts(r[0]), r[1], r[2], r[3]) for r in rows]

    # -- the queue -------------------------------------------------------------------------------
    def _insert_rows(self, cur: Any, rows: Sequence[QueueRow], now: datetime) -> int:
        if not rows:
            return 0
        sql = self._sql(
            f"INSERT INTO {self.prefix}wh_deliveries (endpoint_id, notification_id, position, type, version, "
            "ordering_key, contract_id, service, occurred_at, status, attempts, failures, queued_at, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?) "
            "ON CONFLICT (endpoint_id, notification_id) DO NOTHING")
        ts = self.db_ts(now)
        count = 0
        for chunk in _chunks(rows):
            cur.executemany(sql, [(self.db_uuid(r.endpoint_id), self.db_uuid(r.notification_id), r.position, r.type,
                                   r.version, self.db_uuid(r.ordering_key), self.db_uuid(r.contract_id), r.service,
                                   self.db_ts(r.occurred_at), PENDING, ts, ts) for r in chunk])
            count += len(chunk)
        return count

    def enqueue(self, rows: Sequence[QueueRow], previous: int, position: int, now: datetime) -> None:
        with self._write(previous, position) as cur:
            self._insert_rows(cur, rows, now)

    def add_rows(self, rows: Sequence[QueueRow], now: datetime) -> int:
        with self._write() as cur:
            return self._insert_rows(cur, rows, now)

    def claim_sql(self) -> str:
        """Due rows of active endpoints, each the earliest pending row of its endpoint and
        ordering key, in due order (read from the ``wh_deliveries_due`` index, see ``claim_plan``)."""
        n = self.prefix
        cols, tail = ", ".join(ROW_COLUMNS), self.skip_locked
        return (
            f"SELECT {cols}, d.attempts, d.failures, d.first_attempt_at, "
            "e.url, e.personal_data, e.secret, e.previous_secret, e.previous_expires_at "
            f"FROM {n}wh_deliveries d JOIN {n}wh_endpoints e ON e.endpoint_id = d.endpoint_id "
            "WHERE d.status = 'pending' AND e.status = 'active' AND d.next_attempt_at <= ? "
            "AND (d.leased_until IS NULL OR d.leased_until <= ?) "
            f"AND NOT EXISTS (SELECT 1 FROM {n}wh_deliveries q WHERE q.endpoint_id = d.endpoint_id "
            "AND q.ordering_key = d.ordering_key AND q.status = 'pending' AND q.position < d.position) "
            f"ORDER BY d.next_attempt_at, d.position LIMIT ? {tail}")

    def claim_plan(self, cur: Any) -> None:
        """In the claim's transaction, before its query: make the planner read the due rows in
        index order and stop at the limit (PostgreSQL, ``postgres.py``)."""

    def claim(self, now: datetime, limit: int, lease_until: datetime) -> list[Claimed]:
        ts = self.db_ts(now)
        select = self.claim_sql()
        claimed: list[Claimed] = []
        with self._write() as cur:
            self.claim_plan(cur)
            self._exec(cur, select, (ts, ts, limit))
            found = [_tuple(r) for r in cur.fetchall()]
            if not found:
                return []
            until = self.db_ts(lease_until)
            updates = []
            for r in found:
                lease = random_tokens.token_hex(8)
                row = self._row(r)
                secrets = None if r[14] is None else Secrets(
                    self.box.open(row.endpoint_id, r[14]),
                    None if r[15] is None else self.box.open(row.endpoint_id, r[15]), self.py_ts(r[16]))
                claimed.append(Claimed(row, int(r[9]), int(r[10]), self.py_ts(r[11]), lease, r[12], bool(r[13]),
                                       secrets))
                updates.append((lease, until, r[0], r[1]))
            self._set_leases(cur, updates)
        return claimed

    def _set_leases(self, cur: Any, updates: Sequence[tuple[Any, ...]]) -> None:
        """Rows ``(lease, leased_until, endpoint_id, notification_id)`` leased (PostgreSQL: one statement)."""
        cur.executemany(self._sql(f"UPDATE {self.prefix}wh_deliveries SET lease = ?, leased_until = ? "
                                  "WHERE endpoint_id = ? AND notification_id = ?"), updates)

    def _store_outcomes(self, cur: Any, attempts: Sequence[tuple[Any, ...]], updates: Sequence[tuple[Any, ...]]
                        ) -> None:
        """The attempt rows inserted and the deliveries updated if their leases still hold
        (``finish_many``'s tuples; PostgreSQL: one statement)."""
        n = self.prefix
        cur.executemany(self._sql(
            f"INSERT INTO {n}wh_attempts (endpoint_id, notification_id, attempt, at, status_code, latency_ms, "
            "error) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint_id, notification_id, attempt) DO NOTHING"),
            attempts)
        cur.executemany(self._sql(
            f"UPDATE {n}wh_deliveries SET status = ?, attempts = attempts + 1, failures = failures + ?, "
            "next_attempt_at = ?, first_attempt_at = COALESCE(first_attempt_at, ?), lease = NULL, "
            "leased_until = NULL, delivered_at = COALESCE(?, delivered_at), last_status_code = ?, last_error = ? "
            "WHERE endpoint_id = ? AND notification_id = ? AND lease = ? AND status = ?"), updates)

    def release(self, claimed: Claimed) -> None:
        with self._write() as cur:
            self._exec(cur, f"UPDATE {self.prefix}wh_deliveries SET lease = NULL, leased_until = NULL "
                            "WHERE endpoint_id = ? AND notification_id = ? AND lease = ?",
                       (self.db_uuid(claimed.row.endpoint_id), self.db_uuid(claimed.row.notification_id),
                        claimed.lease))

    def finish(self, claimed: Claimed, attempt: Attempt, status: str, next_attempt_at: datetime | None,
               now: datetime) -> datetime | None:
        return self.finish_many([(claimed, attempt, status, next_attempt_at)], now).get(claimed.row.endpoint_id)

    def finish_many(self, outcomes: Sequence[tuple[Claimed, Attempt, str, datetime | None]], now: datetime
                    ) -> dict[uuid.UUID, datetime | None]:
        """Record many attempts in one transaction (the sender threads' results of one loop turn);
        returns each endpoint's ``failing_since`` afterwards."""
        if not outcomes:
            return {}
        n = self.prefix
        attempts, updates = [], []
        health: dict[uuid.UUID, tuple[bool, datetime | None]] = {}  # endpoint -> (a success in batch, since)
        for claimed, attempt, status, next_at in outcomes:
            row = claimed.row
            eid, nid = self.db_uuid(row.endpoint_id), self.db_uuid(row.notification_id)
            ok = status == DELIVERED
            attempts.append((eid, nid, attempt.attempt, self.db_ts(attempt.at), attempt.status_code,
                             attempt.latency_ms, attempt.error))
            updates.append((status, 0 if ok else 1, self.db_ts(next_at), self.db_ts(attempt.at),
                            self.db_ts(now) if ok else None, attempt.status_code, attempt.error, eid, nid,
                            claimed.lease, PENDING))
            seen_ok, since = health.get(row.endpoint_id, (False, None))
            if ok:
                health[row.endpoint_id] = (True, None)
            elif since is None:
                health[row.endpoint_id] = (seen_ok, attempt.at)
        result: dict[uuid.UUID, datetime | None] = {}
        with self._write() as cur:
            self._store_outcomes(cur, attempts, updates)
            for endpoint_id, (seen_ok, since) in health.items():
                eid = self.db_uuid(endpoint_id)
                if since is None:
                    self._exec(cur, f"UPDATE {n}wh_endpoints SET failing_since = NULL WHERE endpoint_id = ? "
                                    "AND failing_since IS NOT NULL", (eid,))
                    result[endpoint_id] = None
                    continue
                if seen_ok:  # failing again after a success in this batch
                    self._exec(cur, f"UPDATE {n}wh_endpoints SET failing_since = ? WHERE endpoint_id = ?",
                               (self.db_ts(since), eid))
                else:
                    self._exec(cur, f"UPDATE {n}wh_endpoints SET failing_since = COALESCE(failing_since, ?) "
                                    "WHERE endpoint_id = ?", (self.db_ts(since), eid))
                self._exec(cur, f"SELECT failing_since FROM {n}wh_endpoints WHERE endpoint_id = ?", (eid,))
                got = cur.fetchone()
                result[endpoint_id] = None if got is None else self.py_ts(_tuple(got)[0])
        return result

    def redeliver(self, endpoint_id: uuid.UUID, notification_ids: Sequence[uuid.UUID] | None,
                  positions: tuple[int, int] | None, now: datetime) -> int:
        n = self.prefix
        sql = (f"UPDATE {n}wh_deliveries SET status = ?, next_attempt_at = ?, first_attempt_at = NULL, failures = 0, "
               "lease = NULL, leased_until = NULL WHERE endpoint_id = ? AND status <> ?")
        base: list[Any] = [PENDING, self.db_ts(now), self.db_uuid(endpoint_id), CANCELLED]
        count = 0
        with self._write() as cur:
            if notification_ids is not None:
                for nid in notification_ids:
                    count += self._exec(cur, sql + " AND notification_id = ?", [*base, self.db_uuid(nid)])
            elif positions is not None:
                count = self._exec(cur, sql + " AND position >= ? AND position <= ?", [*base, *positions])
        return int(count)

    # -- reads -----------------------------------------------------------------------------------
    def _row(self, r: tuple[Any, ...]) -> QueueRow:
        return QueueRow(self.py_uuid(r[0]), self.py_uuid(r[1]), int(r[2]), r[3], int(r[4]), self.py_uuid(r[5]),
                        None if r[6] is None else self.py_uuid(r[6]), r[7], self._ts(r[8]))

    def _delivery(self, r: tuple[Any, ...], history: tuple[Attempt, ...] = ()) -> Delivery:
        return Delivery(self._row(r), r[9], int(r[10]), self.py_ts(r[11]), self.py_ts(r[12]),
                        None if r[13] is None else int(r[13]), r[14], history)

    def _select_deliveries(self) -> str:
        n, cols = self.prefix, ", ".join(ROW_COLUMNS + STATE_COLUMNS)
        return f"SELECT {cols} FROM {n}wh_deliveries d"

    def deliveries(self, endpoint_id: uuid.UUID, after: int, limit: int, status: str | None) -> list[Delivery]:
        head = self._select_deliveries()
        sql = f"{head} WHERE d.endpoint_id = ? AND d.position > ?"
        params: list[Any] = [self.db_uuid(endpoint_id), after]
        if status is not None:
            sql += " AND d.status = ?"
            params.append(status)
        return [self._delivery(r) for r in self._fetch(sql + " ORDER BY d.position LIMIT ?", [*params, limit])]

    def delivery(self, endpoint_id: uuid.UUID, notification_id: uuid.UUID) -> Delivery | None:
        ids = (self.db_uuid(endpoint_id), self.db_uuid(notification_id))
        head = self._select_deliveries()
        rows = self._fetch(f"{head} WHERE d.endpoint_id = ? AND d.notification_id = ?", ids)
        if not rows:
            return None
        attempts = tuple(Attempt(int(a[0]), self._ts(a[1]), None if a[2] is None else int(a[2]), int(a[3]), a[4])
                         for a in self._fetch(f"SELECT attempt, at, status_code, latency_ms, error FROM "
                                              f"{self.prefix}wh_attempts WHERE endpoint_id = ? AND notification_id = ? "
                                              "ORDER BY attempt", ids))
        return self._delivery(rows[0], attempts)

    def notices(self, contract_id: uuid.UUID, service: str, since: datetime, types: Sequence[str]) -> list[Delivery]:
        if not types:
            return []
        head, where = self._select_deliveries(), self._notices_where(types)
        sql = f"{head} WHERE {where} ORDER BY d.position, d.endpoint_id"
        params = [*types, self.db_uuid(contract_id), service, self.db_ts(since), CANCELLED]
        return [self._delivery(r) for r in self._fetch(sql, params)]

    def _notices_where(self, types: Sequence[str]) -> str:
        marks = ", ".join("?" * len(types))
        return (f"d.type IN ({marks}) AND (d.contract_id = ? "
                "OR (d.contract_id IS NULL AND (d.service = ? OR d.service IS NULL) AND d.occurred_at >= ?)) "
                "AND d.status <> ?")

    def notices_at_version(self, contract_id: uuid.UUID, service: str, since: datetime, types: Sequence[str]
                           ) -> tuple[int | None, list[Delivery]] | None:
        """``notices`` with the contract's stored version in ONE statement (issue 21: a GET read them
        in two round trips), where the events share this store's database and schema
        (``events_table``, set by ``open_webhook_store``); None elsewhere. Deliveries change without
        the contract's version, so they are read on every GET, never kept."""
        if self.events_table is None or not types:
            return None
        table, n, cols, where = self.events_table, self.prefix, ", ".join(ROW_COLUMNS + STATE_COLUMNS), \
            self._notices_where(types)
        sql = (f"SELECT (SELECT max(originator_version) FROM {table} WHERE originator_id = ?), {cols} "
               f"FROM (SELECT 1) AS one LEFT JOIN {n}wh_deliveries d ON {where} ORDER BY d.position, d.endpoint_id")
        cid = self.db_uuid(contract_id)
        rows = self._fetch(sql, [cid, *types, cid, service, self.db_ts(since), CANCELLED])
        version = None if rows[0][0] is None else int(rows[0][0])
        return version, [self._delivery(r[1:]) for r in rows if r[2] is not None]  # notification_id: NOT NULL

    def counts(self) -> dict[str, int]:
        rows = self._fetch(f"SELECT status, COUNT(*) FROM {self.prefix}wh_deliveries GROUP BY status")
        return {str(s): int(c) for s, c in rows}

    def active_endpoints(self) -> int:
        return int(self._fetch(f"SELECT COUNT(*) FROM {self.prefix}wh_endpoints WHERE status = ?", (ACTIVE,))[0][0])

    @abstractmethod
    def position(self) -> int: ...


def _tuple(row: Any) -> tuple[Any, ...]:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), CHUNK):
        yield values[i:i + CHUNK]
