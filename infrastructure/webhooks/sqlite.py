"""Webhook tables in the application's SQLite file (the embedded default)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from eventsourcing.sqlite import SQLiteCursor, SQLiteTrackingRecorder

from infrastructure.persistence.sqlite_tracking import immediate_write, tracked_position
from infrastructure.webhooks.store import _SQLITE_TS, TRACKING_NAME, WebhookTables, ddl

TYPES = {"uuid": "TEXT", "ts": "TEXT", "big": "INTEGER", "bool": "INTEGER", "prefix": "", "deliveries_with": ""}


class SQLiteWebhookStore(WebhookTables, SQLiteTrackingRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *ddl(TYPES)]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        c.execute("INSERT OR IGNORE INTO tracking (application_name, notification_id) VALUES (?, 0)",
                  (TRACKING_NAME,))

    def db_uuid(self, value: Any) -> Any:
        return None if value is None else str(value)

    def db_ts(self, value: datetime | None) -> Any:
        return None if value is None else value.astimezone(UTC).strftime(_SQLITE_TS)

    def db_bool(self, value: bool) -> Any:
        return 1 if value else 0

    def _sql(self, sql: str) -> Any:
        return sql

    def position(self) -> int:
        return self.max_tracking_id(TRACKING_NAME) or 0

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as c:
            yield c

    def _begin(self) -> AbstractContextManager[Any]:
        return immediate_write(self.datastore)  # the write lock before reading anything

    def _locked_position(self, cur: Any) -> int:
        return tracked_position(cur, TRACKING_NAME)

    def close(self) -> None:  # the datastore belongs to the application
        pass
