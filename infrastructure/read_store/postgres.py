"""Read tables in the application's PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL, Identifier

from application.projections.ports import StalePosition
from infrastructure.read_store.common import TABLES, TRACKING_NAME, ReadTables, ddl

TRACKING_TABLE = "read_models_tracking"


class PostgresReadStore(ReadTables, PostgresTrackingRecorder):
    P = "%s"

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        kwargs["tracking_table_name"] = TRACKING_TABLE
        super().__init__(datastore, **kwargs)
        schema = datastore.schema
        self.prefix = SQL("{}.").format(Identifier(schema)).as_string(None)
        self.tracking = SQL("{}.{}").format(Identifier(schema), Identifier(TRACKING_TABLE)).as_string(None)
        types = {"uuid": "uuid", "date": "date", "ts": "timestamptz", "big": "bigint", "prefix": self.prefix}
        self.sql_create_statements.extend(SQL(s) for s in ddl(types))  # type: ignore[arg-type]
        self.sql_create_statements.append(SQL(
            f"INSERT INTO {self.tracking} (application_name, notification_id) VALUES ('{TRACKING_NAME}', 0) "
            "ON CONFLICT DO NOTHING"))  # type: ignore[arg-type]

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(values)]

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(sql, list(params))  # type: ignore[call-overload]
            return [tuple(row.values()) for row in cur.fetchall()]

    def position(self) -> int:
        return self.max_tracking_id(TRACKING_NAME) or 0

    @contextmanager
    def _write(self, previous: int, position: int | None) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(f"SELECT notification_id FROM {self.tracking} WHERE application_name = %s "  # type: ignore
                        "FOR UPDATE", (TRACKING_NAME,))
            row = cur.fetchone()
            current = int(row["notification_id"]) if row is not None else 0
            if previous >= 0 and current != previous:
                raise StalePosition(f"read models are at {current}, batch starts after {previous}")
            yield cur
            if position is None:
                cur.execute(f"INSERT INTO {self.tracking} (application_name, notification_id) "  # type: ignore
                            "VALUES (%s, 0) ON CONFLICT (application_name) DO UPDATE SET notification_id = 0",
                            (TRACKING_NAME,))
            else:
                self._insert_tracking(cur, Tracking(TRACKING_NAME, position))

    def reset(self) -> None:
        with self._write(-1, None) as cur:
            cur.execute("TRUNCATE " + ", ".join(self.prefix + t for t in TABLES))

    def close(self) -> None:  # the datastore belongs to the application
        pass
