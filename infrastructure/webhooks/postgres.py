"""Webhook tables in the application's PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL, Identifier

from infrastructure.webhooks.store import TRACKING_NAME, WebhookTables, ddl

TRACKING_TABLE = "webhooks_tracking"
# wh_deliveries is filled to 50 %: each queue row is updated twice (leased, then its outcome); on a
# full page each update is a new tuple on another page plus an entry in each of the table's six
# indexes; with room left on the page the lease (no indexed column) is a heap-only (HOT) update,
# no index entry at all.


class PostgresWebhookStore(WebhookTables, PostgresTrackingRecorder):
    skip_locked = "FOR UPDATE OF d SKIP LOCKED"  # several senders never lease the same row

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        kwargs["tracking_table_name"] = TRACKING_TABLE
        super().__init__(datastore, **kwargs)
        self.prefix = SQL("{}.").format(Identifier(datastore.schema)).as_string(None)
        self.tracking = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(TRACKING_TABLE)).as_string(None)
        types = {"uuid": "uuid", "ts": "timestamptz", "big": "bigint", "bool": "boolean", "prefix": self.prefix,
                 "deliveries_with": " WITH (fillfactor = 50)"}
        statements = [*ddl(types), self._fillfactor_ddl(),
                      f"INSERT INTO {self.tracking} (application_name, notification_id) "
                      f"VALUES ('{TRACKING_NAME}', 0) ON CONFLICT DO NOTHING"]
        self.sql_create_statements.extend(SQL(cast(Any, s)).format() for s in statements)

    def _fillfactor_ddl(self) -> str:
        """A queue made before the fillfactor gets it (the pages it fills from then on keep the room;
        the catalog row is written only when the setting differs)."""
        table = f"{self.prefix}wh_deliveries"
        return (f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = '{table}'::regclass AND "
                f"reloptions @> ARRAY['fillfactor=50']) THEN ALTER TABLE {table} SET (fillfactor = 50); END IF; END $$")

    def claim_plan(self, cur: Any) -> None:
        """No sort of the queue: with the table's statistics older than its rows (a month start
        queued 100,000 since the last ANALYZE), the planner estimates one pending row, fetches
        every pending row by another index and sorts them all for each claim (38 ms at 20,000
        rows, growing with the queue); read in ``wh_deliveries_due`` order it stops at the limit
        (0.1 ms). For this transaction only (``SET LOCAL``)."""
        cur.execute("SET LOCAL enable_sort = off")

    def _set_leases(self, cur: Any, updates: Sequence[tuple[Any, ...]]) -> None:
        leases, until, endpoints, notifications = zip(*updates, strict=True)
        cur.execute(cast(Any, f"UPDATE {self.prefix}wh_deliveries d SET lease = u.lease, leased_until = u.until "
                              "FROM unnest(%s::text[], %s::timestamptz[], %s::uuid[], %s::uuid[]) "
                              "AS u(lease, until, endpoint_id, notification_id) "
                              "WHERE d.endpoint_id = u.endpoint_id AND d.notification_id = u.notification_id"),
                    (list(leases), list(until), list(endpoints), list(notifications)))

    def _store_outcomes(self, cur: Any, attempts: Sequence[tuple[Any, ...]], updates: Sequence[tuple[Any, ...]]
                        ) -> None:
        """One statement (arrays, not a statement per row): the attempts inserted by its CTE."""
        n = self.prefix
        cur.execute(cast(Any,
            f"WITH attempt AS (INSERT INTO {n}wh_attempts (endpoint_id, notification_id, attempt, at, status_code, "
            "latency_ms, error) SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::int[], %s::timestamptz[], "
            "%s::int[], %s::int[], %s::text[]) ON CONFLICT (endpoint_id, notification_id, attempt) DO NOTHING) "
            f"UPDATE {n}wh_deliveries d SET status = u.status, attempts = d.attempts + 1, "
            "failures = d.failures + u.failed, next_attempt_at = u.next_at, "
            "first_attempt_at = COALESCE(d.first_attempt_at, u.at), lease = NULL, leased_until = NULL, "
            "delivered_at = COALESCE(u.delivered_at, d.delivered_at), last_status_code = u.status_code, "
            "last_error = u.error "
            "FROM unnest(%s::text[], %s::int[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::int[], "
            "%s::text[], %s::uuid[], %s::uuid[], %s::text[], %s::text[]) AS u(status, failed, next_at, at, "
            "delivered_at, status_code, error, endpoint_id, notification_id, lease, pending) "
            "WHERE d.endpoint_id = u.endpoint_id AND d.notification_id = u.notification_id AND d.lease = u.lease "
            "AND d.status = u.pending"),
            [*(list(c) for c in zip(*attempts, strict=True)), *(list(c) for c in zip(*updates, strict=True))])

    def _sql(self, sql: str) -> Any:
        return sql.replace("?", "%s")

    def position(self) -> int:
        return self.max_tracking_id(TRACKING_NAME) or 0

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            yield cur

    def _begin(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=True)

    def _locked_position(self, cur: Any) -> int:
        cur.execute(cast(Any, f"SELECT notification_id FROM {self.tracking} WHERE application_name = %s "
                              "FOR UPDATE"), (TRACKING_NAME,))
        row = cur.fetchone()
        return int(row["notification_id"]) if row is not None else 0

    def close(self) -> None:  # the datastore belongs to the application
        pass
