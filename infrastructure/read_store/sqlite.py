"""Read tables in the application's SQLite file (the embedded default)."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date
from typing import Any

from eventsourcing.sqlite import SQLiteCursor, SQLiteTrackingRecorder

from application.projections.ports import RebuildInProgress
from infrastructure.persistence.sqlite_tracking import immediate_write, tracked_position
from infrastructure.read_store.common import (
    DOCUMENT_COLUMNS,
    TRACKING_NAME,
    ReadTables,
    _norm,
    customer_column_ddl,
    ddl,
    document_indexes,
)

_MEMORY_REBUILDS: dict[str, threading.Lock] = {}  # in-memory databases live in this process only
_MEMORY_GUARD = threading.Lock()
TYPES = {"uuid": "TEXT", "date": "TEXT", "ts": "TEXT", "big": "INTEGER", "prefix": ""}


class SQLiteReadStore(ReadTables, SQLiteTrackingRecorder):
    P = "?"
    prefix = ""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *ddl(TYPES, documents=False)]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        c.execute("PRAGMA table_info(rm_payments)")
        if "kind" not in {row[1] for row in c.fetchall()}:
            # stores made before settlement (rule book 7) kinds: every row so far was a payment
            c.execute("ALTER TABLE rm_payments ADD COLUMN kind TEXT NOT NULL DEFAULT 'transfer'")
        c.execute("PRAGMA table_info(rm_contracts)")
        if "customer_number" not in {row[1] for row in c.fetchall()}:  # contract search (issue 19)
            c.execute("ALTER TABLE rm_contracts ADD COLUMN customer_number TEXT NOT NULL DEFAULT ''")
        for statement in customer_column_ddl(""):
            c.execute(statement)
        c.execute("PRAGMA table_info(rm_invoices)")
        present = {row[1] for row in c.fetchall()}
        for column, column_ddl in DOCUMENT_COLUMNS:  # stores made before issued invoices (issue 16)
            if column not in present:
                c.execute(f"ALTER TABLE rm_invoices ADD COLUMN {column} {column_ddl}")
        for statement in document_indexes(TYPES):
            c.execute(statement)
        c.execute("INSERT OR IGNORE INTO tracking (application_name, notification_id) VALUES (?, 0)",
                  (TRACKING_NAME,))

    db_uuid = staticmethod(str)
    db_date = staticmethod(date.isoformat)
    db_ts = staticmethod(lambda v: v.astimezone(UTC).isoformat(timespec="microseconds"))

    def db(self, value: Any) -> Any:
        return _norm(value)

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, list(params))
            return [tuple(row) for row in c.fetchall()]

    def position(self) -> int:
        return self.max_tracking_id(self.tracking_name) or 0

    def _ddl_types(self) -> dict[str, str]:
        return TYPES

    def _set_tracking(self, cur: Any, position: int) -> None:
        cur.execute("INSERT INTO tracking (application_name, notification_id) VALUES (?, ?) "
                    "ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id",
                    (self.tracking_name, position))

    def _delete_tracking(self, cur: Any) -> None:
        cur.execute("DELETE FROM tracking WHERE application_name = ?", (self.tracking_name,))

    def _delete_parts(self, cur: Any) -> None:
        name = self.tracking_name + "."
        cur.execute("DELETE FROM tracking WHERE substr(application_name, 1, ?) = ?", (len(name), name))

    @contextmanager
    def _locked(self) -> Iterator[tuple[Any, int]]:
        with immediate_write(self.datastore) as cursor:  # the write lock before reading the position
            yield cursor, tracked_position(cursor, self.tracking_name)

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        """An exclusive ``flock`` of ``<database file>.rebuild-lock`` (SQLite has no advisory locks; the
        kernel releases it when the process dies); an in-memory database: a lock of this process."""
        pool = getattr(self.datastore, "pool", None)
        name = str(getattr(pool, "db_name", "") or "")
        if not name or getattr(pool, "is_sqlite_memory_mode", False):
            with _MEMORY_GUARD:
                lock = _MEMORY_REBUILDS.setdefault(name, threading.Lock())
            if not lock.acquire(blocking=False):
                raise RebuildInProgress("another rebuild of these read tables is running")
            try:
                yield
            finally:
                lock.release()
            return
        with open(name.removeprefix("file:").split("?", 1)[0] + ".rebuild-lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RebuildInProgress("another rebuild of these read tables is running") from None
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def close(self) -> None:  # the datastore belongs to the application
        pass
