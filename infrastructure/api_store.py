"""SQL storage of the HTTP API's own state: API keys, idempotency keys, the sandbox clock and the
web pages' login sessions.

Kept in the same database as the events (the SQLite file or the PostgreSQL schema), so every
process of a deployment (API workers, scheduler, projection runners) sees the same keys and
the same sandbox clock, and nothing important lives only in one process's memory.

One set of SQL templates serves both engines: ``%s`` placeholders and ``{table}`` names. The
templates are constants: values always travel as parameters, never inside the SQL text. The
PostgreSQL store fills table names in with ``psycopg.sql.Identifier`` (schema-qualified); the
SQLite store uses the plain names and ``?`` placeholders.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from application.ports import ApiKeyRecord, IdempotencyRecord, KeyNameTaken, UiSessionRecord
from infrastructure.persistence.pool_health import CONNECTION_LOST, PoolDoctor

# --------------------------------------------------------------------------- SQL templates

_INSERT_KEY = ("INSERT INTO {api_keys} (key_hash, role, name, created_at, revoked_at) "
               "VALUES (%s, %s, %s, %s, NULL)")
_FIND_KEY = ("SELECT key_hash, role, name, created_at, revoked_at FROM {api_keys} "
             "WHERE key_hash = %s AND revoked_at IS NULL")
_LIST_KEYS = "SELECT key_hash, role, name, created_at, revoked_at FROM {api_keys} ORDER BY created_at, name"
_REVOKE_KEY = "UPDATE {api_keys} SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL"

# Claim a key atomically: the INSERT wins for exactly one of several concurrent requests.
_CLAIM = ("INSERT INTO {idempotency_keys} (key, principal, request_hash, status, created_at) "
          "VALUES (%s, %s, %s, 'in_progress', %s) ON CONFLICT (key, principal) DO NOTHING")
# Take over a row that is past retention (not purged yet), or an in-progress row of the same
# request abandoned by a crashed process; the WHERE makes this atomic as well.
_TAKE_OVER = ("UPDATE {idempotency_keys} SET request_hash = %s, status = 'in_progress', response_status = NULL, "
              "response_headers = NULL, response_body = NULL, created_at = %s "
              "WHERE key = %s AND principal = %s AND (created_at < %s "
              "OR (status = 'in_progress' AND created_at < %s AND request_hash = %s))")
_GET_CLAIM = ("SELECT request_hash, status, response_status, response_headers, response_body, created_at "
              "FROM {idempotency_keys} WHERE key = %s AND principal = %s")
_FINISH = ("UPDATE {idempotency_keys} SET status = 'done', response_status = %s, response_headers = %s, "
           "response_body = %s WHERE key = %s AND principal = %s")
_RELEASE = "DELETE FROM {idempotency_keys} WHERE key = %s AND principal = %s AND status = 'in_progress'"
_PURGE = "DELETE FROM {idempotency_keys} WHERE created_at < %s"

_GET_CLOCK = "SELECT now FROM {service_clock} WHERE id = 1"
# The sandbox clock only moves forward: the conditional upsert makes concurrent setters safe.
_ADVANCE_CLOCK = ("INSERT INTO {service_clock} AS c (id, now, set_at) VALUES (1, %s, %s) "
                  "ON CONFLICT (id) DO UPDATE SET now = excluded.now, set_at = excluded.set_at "
                  "WHERE c.now <= excluded.now")

# Web-page sessions (``api.ui.sessions``): only the SHA-256 of the session id is stored. A
# session is live while both its idle and its absolute limit are ahead; reading it restarts the
# idle timer in the same statement, so two workers never disagree about a session.
_INSERT_SESSION = "INSERT INTO {ui_sessions} (session_hash, key_hash, created_at, last_seen) VALUES (%s, %s, %s, %s)"
_TOUCH_SESSION = ("UPDATE {ui_sessions} SET last_seen = %s WHERE session_hash = %s AND last_seen >= %s "
                  "AND created_at >= %s")
_GET_SESSION = "SELECT key_hash, created_at, last_seen FROM {ui_sessions} WHERE session_hash = %s"
_DELETE_SESSION = "DELETE FROM {ui_sessions} WHERE session_hash = %s"
_PURGE_SESSIONS = "DELETE FROM {ui_sessions} WHERE last_seen < %s OR created_at < %s"
_COUNT_SESSIONS = "SELECT COUNT(*) FROM {ui_sessions}"

_TABLES = ("api_keys", "idempotency_keys", "service_clock", "ui_sessions")


def _ddl(ts: str, blob: str) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS {api_keys} (key_hash TEXT PRIMARY KEY, role TEXT NOT NULL, "
        f"name TEXT NOT NULL UNIQUE, created_at {ts} NOT NULL, revoked_at {ts})",
        "CREATE TABLE IF NOT EXISTS {idempotency_keys} (key TEXT NOT NULL, principal TEXT NOT NULL, "
        "request_hash TEXT NOT NULL, status TEXT NOT NULL, response_status INTEGER, response_headers TEXT, "
        f"response_body {blob}, created_at {ts} NOT NULL, PRIMARY KEY (key, principal))",
        "CREATE INDEX IF NOT EXISTS {idempotency_created_idx} ON {idempotency_keys} (created_at)",
        f"CREATE TABLE IF NOT EXISTS {{service_clock}} (id INTEGER PRIMARY KEY CHECK (id = 1), now {ts} NOT NULL, "
        f"set_at {ts} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {ui_sessions} (session_hash TEXT PRIMARY KEY, key_hash TEXT NOT NULL, "
        f"created_at {ts} NOT NULL, last_seen {ts} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS {ui_sessions_seen_idx} ON {ui_sessions} (last_seen)",
    ]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC)


class _SqlStore:
    """The logic shared by both engines; subclasses run one statement with ``_run``."""

    def __init__(self) -> None:
        self._revoke_listeners: list[Callable[[str], None]] = []

    def _run(self, template: str, params: Sequence[Any] = (), fetch: bool = False
             ) -> tuple[int, list[tuple[Any, ...]]]:
        raise NotImplementedError

    def _ts_out(self, value: Any) -> datetime:
        raise NotImplementedError

    def _key(self, row: tuple[Any, ...]) -> ApiKeyRecord:
        return ApiKeyRecord(row[0], row[1], row[2], self._ts_out(row[3]),
                            None if row[4] is None else self._ts_out(row[4]))

    # -- API keys
    _unique_violation: tuple[type[Exception], ...] = ()

    def insert_key(self, key_hash: str, role: str, name: str, created_at: datetime) -> None:
        try:
            self._run(_INSERT_KEY, (key_hash, role, name, _utc(created_at)))
        except self._unique_violation:
            raise KeyNameTaken(name) from None

    def find_key(self, key_hash: str) -> ApiKeyRecord | None:
        _, rows = self._run(_FIND_KEY, (key_hash,), fetch=True)
        return self._key(rows[0]) if rows else None

    def list_keys(self) -> list[ApiKeyRecord]:
        _, rows = self._run(_LIST_KEYS, fetch=True)
        return [self._key(r) for r in rows]

    def revoke_key(self, name: str, at: datetime) -> bool:
        count, _ = self._run(_REVOKE_KEY, (_utc(at), name))
        for listener in list(self._revoke_listeners):
            listener(name)
        return count > 0

    def on_revoke(self, listener: Callable[[str], None]) -> None:
        self._revoke_listeners.append(listener)

    # -- idempotency keys
    def claim_idempotency(self, key: str, principal: str, request_hash: str, now: datetime,
                          stale_before: datetime, expired_before: datetime) -> IdempotencyRecord | None:
        """``None`` when this request now holds the key; else the record someone else holds."""
        now = _utc(now)
        for _ in range(3):  # the row may be purged between the statements: try again
            count, _ = self._run(_CLAIM, (key, principal, request_hash, now))
            if count == 1:
                return None
            count, _ = self._run(_TAKE_OVER, (request_hash, now, key, principal, _utc(expired_before),
                                              _utc(stale_before), request_hash))
            if count == 1:
                return None
            _, rows = self._run(_GET_CLAIM, (key, principal), fetch=True)
            if rows:
                r = rows[0]
                body = None if r[4] is None else bytes(r[4])
                return IdempotencyRecord(r[0], r[1], r[2], json.loads(r[3]) if r[3] else {}, body,
                                         self._ts_out(r[5]))
        raise RuntimeError("idempotency key could neither be claimed nor read")

    def finish_idempotency(self, key: str, principal: str, status: int, headers: Mapping[str, str],
                           body: bytes) -> None:
        self._run(_FINISH, (status, json.dumps(dict(headers), sort_keys=True), body, key, principal))

    def release_idempotency(self, key: str, principal: str) -> None:
        self._run(_RELEASE, (key, principal))

    def purge_idempotency(self, before: datetime) -> int:
        count, _ = self._run(_PURGE, (_utc(before),))
        return count

    # -- web-page sessions
    def insert_session(self, session_hash: str, key_hash: str, now: datetime) -> None:
        now = _utc(now)
        self._run(_INSERT_SESSION, (session_hash, key_hash, now, now))

    def touch_session(self, session_hash: str, now: datetime, idle_after: datetime,
                      absolute_after: datetime) -> UiSessionRecord | None:
        """The live session (its ``last_seen`` set to ``now``), or None when unknown or expired
        (an expired row is deleted)."""
        count, _ = self._run(_TOUCH_SESSION, (_utc(now), session_hash, _utc(idle_after), _utc(absolute_after)))
        if count != 1:
            self._run(_DELETE_SESSION, (session_hash,))
            return None
        _, rows = self._run(_GET_SESSION, (session_hash,), fetch=True)
        if not rows:  # logged out between the statements
            return None
        return UiSessionRecord(rows[0][0], self._ts_out(rows[0][1]), self._ts_out(rows[0][2]))

    def delete_session(self, session_hash: str) -> None:
        self._run(_DELETE_SESSION, (session_hash,))

    def purge_sessions(self, idle_after: datetime, absolute_after: datetime) -> int:
        count, _ = self._run(_PURGE_SESSIONS, (_utc(idle_after), _utc(absolute_after)))
        return count

    def count_sessions(self) -> int:
        _, rows = self._run(_COUNT_SESSIONS, fetch=True)
        return int(rows[0][0])

    # -- sandbox clock
    def get_clock(self) -> datetime | None:
        _, rows = self._run(_GET_CLOCK, fetch=True)
        return self._ts_out(rows[0][0]) if rows else None

    def advance_clock(self, to: datetime, at: datetime) -> datetime:
        """Set the clock to ``to`` unless it is already later; returns the clock's value."""
        self._run(_ADVANCE_CLOCK, (_utc(to), _utc(at)))
        current = self.get_clock()
        assert current is not None
        return current


# --------------------------------------------------------------------------- SQLite

_SQLITE_TS = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so text order is time order


class SQLiteApiStore(_SqlStore):
    """One connection guarded by a lock (the API's threadpool shares it); other processes
    coordinate through SQLite's file locks (``busy_timeout``)."""

    _unique_violation = (sqlite3.IntegrityError,)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        if path not in (":memory:", ""):
            self._conn.execute("PRAGMA journal_mode = WAL")
        names = {t: t for t in _TABLES} | {"idempotency_created_idx": "idempotency_created_idx",
                                           "ui_sessions_seen_idx": "ui_sessions_seen_idx"}
        self._sql = {t: t.replace("%s", "?").format(**names) for t in _all_templates()}

    def _run(self, template: str, params: Sequence[Any] = (), fetch: bool = False
             ) -> tuple[int, list[tuple[Any, ...]]]:
        args = [p.strftime(_SQLITE_TS) if isinstance(p, datetime) else p for p in params]
        with self._lock:
            cursor = self._conn.execute(self._sql[template], args)
            rows = cursor.fetchall() if fetch else []
            return cursor.rowcount, rows

    def _ts_out(self, value: Any) -> datetime:
        return datetime.strptime(value, _SQLITE_TS).replace(tzinfo=UTC)

    def setup(self) -> None:
        for statement in _ddl("TEXT", "BLOB"):
            self._run(statement)

    def ping(self) -> None:
        with self._lock:
            self._conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --------------------------------------------------------------------------- PostgreSQL


class PostgresApiStore(_SqlStore):
    """A small psycopg pool (autocommit: every statement is its own transaction)."""

    def __init__(self, conninfo: str, schema: str = "public", pool_size: int = 4, timeout: float = 5.0) -> None:
        from psycopg import errors, sql
        from psycopg_pool import ConnectionPool

        super().__init__()
        self._unique_violation = (errors.UniqueViolation,)
        self.schema = schema
        self._pool = ConnectionPool(conninfo, min_size=1, max_size=pool_size, open=True,
                                    kwargs={"autocommit": True}, name="contracts-api",
                                    timeout=timeout)  # wait for a connection at most this long (then 503)
        self._doctor = PoolDoctor(self._pool)
        names: dict[str, Any] = {t: sql.Identifier(schema, t) for t in _TABLES}
        names["idempotency_created_idx"] = sql.Identifier("idempotency_keys_created_idx")
        names["ui_sessions_seen_idx"] = sql.Identifier("ui_sessions_seen_idx")
        self._sql = {t: sql.SQL(t).format(**names) for t in _all_templates()}

    def _run(self, template: str, params: Sequence[Any] = (), fetch: bool = False
             ) -> tuple[int, list[tuple[Any, ...]]]:
        try:
            with self._pool.connection() as conn, conn.cursor() as cursor:
                cursor.execute(self._sql[template], list(params))
                rows = cursor.fetchall() if fetch else []
                return cursor.rowcount, rows
        except CONNECTION_LOST:
            self._doctor.connection_failed()  # the other idle connections are likely dead too (issue 14)
            raise

    def _ts_out(self, value: Any) -> datetime:
        return _utc(value)

    def setup(self) -> None:
        from psycopg import sql

        with self._pool.connection() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        for statement in _ddl("TIMESTAMPTZ", "BYTEA"):
            self._run(statement)

    def ping(self) -> None:
        with self._pool.connection(timeout=3) as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self._pool.close()


def _all_templates() -> list[str]:
    return [_INSERT_KEY, _FIND_KEY, _LIST_KEYS, _REVOKE_KEY, _CLAIM, _TAKE_OVER, _GET_CLAIM, _FINISH, _RELEASE,
            _PURGE, _GET_CLOCK, _ADVANCE_CLOCK, _INSERT_SESSION, _TOUCH_SESSION, _GET_SESSION, _DELETE_SESSION,
            _PURGE_SESSIONS, _COUNT_SESSIONS, *_ddl("TEXT", "BLOB"), *_ddl("TIMESTAMPTZ", "BYTEA")]


# --------------------------------------------------------------------------- construction
