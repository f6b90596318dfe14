"""Read tables in the application's PostgreSQL schema."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import psycopg
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL, Identifier

from application.projections.ports import Changes, RebuildInProgress
from infrastructure.read_store.common import (
    DOCUMENT_COLUMNS,
    INVOICE_COLUMNS,
    INVOICE_UPDATES,
    SHADOW,
    TABLES,
    TRACKING_NAME,
    ReadTables,
    customer_column_ddl,
    ddl,
    document_indexes,
    invoice_values,
)

R = TypeVar("R")
INVOICE_TYPES = ("uuid", "uuid", "text", "text", "text", "date", "date", "bigint", "bigint", "bigint", "bigint", "text",
                 "text", "text", "text", "text")

TRACKING_TABLE = "read_models_tracking"


class PostgresReadStore(ReadTables, PostgresTrackingRecorder):
    P = "%s"

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        kwargs["tracking_table_name"] = TRACKING_TABLE
        super().__init__(datastore, **kwargs)
        schema = datastore.schema
        self.prefix = SQL("{}.").format(Identifier(schema)).as_string(None)
        self.tracking = SQL("{}.{}").format(Identifier(schema), Identifier(TRACKING_TABLE)).as_string(None)
        # issue 21: every committed batch announces its position on this channel (read-your-writes
        # in other processes without polling the tracking table)
        self.position_channel = f"{schema}_{TRACKING_TABLE}"[:63]
        types = self._ddl_types()
        statements = [*ddl(types, documents=False),
                      f"ALTER TABLE {self.prefix}rm_payments ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL "
                      "DEFAULT 'transfer'",
                      f"ALTER TABLE {self.prefix}rm_contracts ADD COLUMN IF NOT EXISTS customer_number "
                      "TEXT NOT NULL DEFAULT ''", *customer_column_ddl(self.prefix),
                      *(f"ALTER TABLE {self.prefix}rm_invoices ADD COLUMN IF NOT EXISTS {column} {column_ddl}"
                        for column, column_ddl in DOCUMENT_COLUMNS),
                      *document_indexes(types),
                      f"INSERT INTO {self.tracking} (application_name, notification_id) "
                      f"VALUES ('{TRACKING_NAME}', 0) ON CONFLICT DO NOTHING"]
        self.sql_create_statements.extend(SQL(cast(Any, s)).format() for s in statements)

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(values)]

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(cast(Any, sql), list(params))
            return [tuple(row.values()) for row in cur.fetchall()]

    def position(self) -> int:
        return self.max_tracking_id(self.tracking_name) or 0

    def _ddl_types(self) -> dict[str, str]:
        return {"uuid": "uuid", "date": "date", "ts": "timestamptz", "big": "bigint", "prefix": self.prefix}

    def _set_tracking(self, cur: Any, position: int) -> None:
        cur.execute(cast(Any, f"INSERT INTO {self.tracking} (application_name, notification_id) VALUES (%s, %s) "
                              "ON CONFLICT (application_name) DO UPDATE SET notification_id = "
                              "excluded.notification_id"), (self.tracking_name, position))

    def _delete_tracking(self, cur: Any) -> None:
        cur.execute(cast(Any, f"DELETE FROM {self.tracking} WHERE application_name = %s"), (self.tracking_name,))

    def _delete_parts(self, cur: Any) -> None:
        cur.execute(cast(Any, f"DELETE FROM {self.tracking} WHERE starts_with(application_name, %s)"),
                    (self.tracking_name + ".",))

    def _clear(self, cur: Any) -> None:
        cur.execute("TRUNCATE " + ", ".join(self.prefix + t for t in TABLES))

    def _forget_connections(self) -> None:
        self._listener = None
        self._position_listener = None

    @contextmanager
    def _locked(self) -> Iterator[tuple[Any, int]]:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(cast(Any, f"SELECT notification_id FROM {self.tracking} WHERE application_name = %s "
                                     "FOR UPDATE"), (self.tracking_name,))
            row = cur.fetchone()
            yield cur, int(row["notification_id"]) if row is not None else 0

    def _moved(self, cur: Any, position: int | None) -> None:
        if position is not None and self.tracking_name == TRACKING_NAME:  # the live tables, not a rebuild's
            # delivered at commit, only if it commits (NOTIFY is transactional)
            cur.execute("SELECT pg_notify(%s, %s)", (self.position_channel, str(position)))

    def _advance(self, cur: Any, position: int) -> None:
        """The library's tracking upsert (single-row tracking: moved forward only, refused if not)
        and, on the live tables, the announcement, in ONE statement made once (issue 21: a batch of
        one or two events paid a second round trip and the library's statement composed anew)."""
        if not self.datastore.single_row_tracking:
            super()._advance(cur, position)
            return
        live = self.tracking_name == TRACKING_NAME
        if self._advance_statements is None:
            upsert = (f"INSERT INTO {self.tracking} (application_name, notification_id) VALUES (%s, %s) "
                      f"ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id "
                      f"WHERE {self.tracking}.notification_id < excluded.notification_id RETURNING ")
            self._advance_statements = (upsert + "notification_id", upsert + "pg_notify(%s, %s::text)")
        if live:
            cur.execute(self._advance_statements[1], (self.tracking_name, position, self.position_channel, position),
                        prepare=True)
        else:
            cur.execute(self._advance_statements[0], (self.tracking_name, position), prepare=True)
        if cur.fetchone() is None:  # as the library's: not moved forward
            raise IntegrityError(f"Failed to record tracking for {self.tracking_name} {position}")

    _advance_statements: tuple[str, str] | None = None

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        """A session advisory lock named after the schema's read tables, on a connection of its own
        (not a pooled one: the lock would stay with it); closing it, or the process dying, releases it."""
        conn = self._connect()
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                               (f"{self.datastore.schema}.{TRACKING_NAME}.rebuild",)).fetchone()
            if not (row and row[0]):
                raise RebuildInProgress(f"another rebuild of these read tables (schema {self.datastore.schema!r}) "
                                        "is running")
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def replace_with(self, shadow: Any) -> int:
        """One transaction: the live tables are dropped and the shadow's renamed into their place, their
        indexes too (``rb_x`` -> ``x``), the live position set to the shadow's, the shadow's tracking row
        deleted. Renaming instead of copying every row (issue 21: the copy was ~10 % of a rebuild); the
        names, columns and indexes are those of the DDL, as in a fresh schema. Readers wait on the table
        locks and then read the new tables (PostgreSQL looks a waiting query's tables up again). The
        shadow's ``DEFERRED_INDEXES`` are built first, in a transaction of their own."""
        shadow.index_shadow()  # before the swap's transaction: the live tables are not locked meanwhile
        position, schema = shadow.position(), self.datastore.schema
        with self._write(-1, position, exact=True) as cur:
            cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = ANY(%s)",
                        (schema, [SHADOW + t for t in TABLES]))
            indexes = [str(r["indexname"]) for r in cur.fetchall()]
            for table in TABLES:
                cur.execute(cast(Any, f"DROP TABLE IF EXISTS {self.prefix}{table}"))
                cur.execute(SQL("ALTER TABLE {}.{} RENAME TO {}").format(
                    Identifier(schema), Identifier(SHADOW + table), Identifier(table)))
            for name in indexes:
                assert name.startswith(SHADOW), name
                cur.execute(SQL("ALTER INDEX {}.{} RENAME TO {}").format(
                    Identifier(schema), Identifier(name), Identifier(name.removeprefix(SHADOW))))
            shadow._delete_tracking(cur)
        return int(position)

    def commit(self, changes: Changes, previous: int, position: int) -> None:
        """One statement per table per batch: rows travel as arrays and are ``unnest``-ed (far fewer
        round trips than ``executemany``); upserts are de-duplicated by key first."""
        n = self.prefix
        with self._write(previous, position) as cur:
            invoices = _last_by(changes.invoices, lambda r: r.invoice_id)
            if invoices:
                _bulk(cur, f"INSERT INTO {n}rm_invoices AS inv ({', '.join(INVOICE_COLUMNS)})", INVOICE_TYPES,
                      [invoice_values(r) for r in invoices],
                      f"ON CONFLICT (invoice_id) DO UPDATE SET {INVOICE_UPDATES}")
            if changes.payments:
                _bulk(cur, f"INSERT INTO {n}rm_payments (position, invoice_id, contract_id, paid_on, amount, kind)",
                      ("bigint", "uuid", "uuid", "date", "bigint", "text"),
                      [(r.position, r.invoice_id, r.contract_id, r.paid_on, r.amount, r.kind)
                       for r in changes.payments])
            claims = _last_by(changes.claims, lambda r: r.claim_id)
            if claims:
                _bulk(cur, f"INSERT INTO {n}rm_claims (claim_id, contract_id, status, doc)",
                      ("uuid", "uuid", "text", "text"), [(r.claim_id, r.contract_id, r.status, r.doc) for r in claims],
                      "ON CONFLICT (claim_id) DO UPDATE SET contract_id = excluded.contract_id, "
                      "status = excluded.status, doc = excluded.doc")
            if changes.deadlines_cleared:
                _bulk(cur, f"DELETE FROM {n}rm_deadlines WHERE (aggregate_id, kind) IN (", ("uuid", "text"),
                      changes.deadlines_cleared, ")")
            if changes.deadlines_removed:
                _bulk(cur, f"DELETE FROM {n}rm_deadlines WHERE (aggregate_id, kind, ref) IN (",
                      ("uuid", "text", "text"), changes.deadlines_removed, ")")
            added = _last_by(changes.deadlines_added, lambda r: (r.aggregate_id, r.kind, r.ref))
            if added:
                _bulk(cur, f"INSERT INTO {n}rm_deadlines (aggregate_id, kind, ref, due_on)",
                      ("uuid", "text", "text", "date"), [(r.aggregate_id, r.kind, r.ref, r.due_on) for r in added],
                      "ON CONFLICT (aggregate_id, kind, ref) DO UPDATE SET due_on = excluded.due_on")
            states = _last_by(changes.states, lambda r: r.contract_id)
            if states:
                _bulk(cur, f"INSERT INTO {n}rm_contracts (contract_id, service, state, version, position, doc, "
                      "customer_number)", ("uuid", "text", "text", "bigint", "bigint", "text", "text"),
                      [(r.contract_id, r.service, r.state, r.version, r.position, r.doc, r.customer_number)
                       for r in states],
                      "ON CONFLICT (contract_id) DO UPDATE SET service = excluded.service, state = excluded.state, "
                      "version = excluded.version, position = excluded.position, doc = excluded.doc, "
                      "customer_number = excluded.customer_number")
            if changes.counterparties_erased:
                cur.execute(cast(Any, f"UPDATE {n}rm_invoices SET counterparty = '' WHERE contract_id = ANY(%s)"),
                            (list(changes.counterparties_erased),))
            if changes.event_times:
                _bulk(cur, f"INSERT INTO {n}rm_event_times (position, originator_id, version, recorded_at)",
                      ("bigint", "uuid", "bigint", "timestamptz"),
                      [(r.position, r.originator_id, r.version, r.recorded_at) for r in changes.event_times])
            if changes.damaged:
                _bulk(cur, f"INSERT INTO {n}rm_damaged (position, aggregate_id, version, event, reason)",
                      ("bigint", "uuid", "bigint", "text", "text"),
                      [(r.position, r.aggregate_id, r.version, r.event, r.reason) for r in changes.damaged])
            self._write_transfers(cur, changes)


    # -- wake-ups: LISTEN to the channel the library NOTIFYs on every insert ------------------------
    _listener: psycopg.Connection[Any] | None = None

    def wait_for_events(self, channel: str, timeout: float) -> bool:
        """Block until the event table's NOTIFY arrives or ``timeout`` passes (True: notified).
        A lost LISTEN connection is dropped and re-opened on the next call (polling still works)."""
        try:
            if self._listener is None:
                pool = self.datastore.pool
                kwargs = pool.kwargs if isinstance(pool.kwargs, dict) else {}
                params = {k: v for k, v in kwargs.items() if k in ("dbname", "host", "port", "user", "password")}
                conn = psycopg.connect(str(pool.conninfo or ""), autocommit=True, connect_timeout=5, **params)
                conn.execute(SQL("LISTEN {}").format(Identifier(channel)))
                self._listener = conn
            return any(True for _ in self._listener.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error:
            self.close_listener()
            time.sleep(min(timeout, 0.5))
            return False

    def close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._listener.close()
            self._listener = None
        self.close_position_listener()

    # -- the runner's position, as announced by every committed batch (issue 21) ------------------
    _position_listener: psycopg.Connection[Any] | None = None

    def listen_positions(self) -> None:
        """LISTEN to the position channel (a connection of its own); call before reading the position
        that announcements then update, so no announcement falls between the two."""
        if self._position_listener is None:
            conn = self._connect()
            conn.execute(SQL("LISTEN {}").format(Identifier(self.position_channel)))
            self._position_listener = conn

    def wait_position(self, timeout: float) -> int | None:
        """The highest position announced within ``timeout`` (all pending announcements drained), or
        None if none came. A lost connection raises; the next ``listen_positions`` reconnects."""
        if self._position_listener is None:
            self.listen_positions()
        assert self._position_listener is not None
        best: int | None = None
        try:
            for n in self._position_listener.notifies(timeout=timeout, stop_after=1):
                best = int(n.payload)
            for n in self._position_listener.notifies(timeout=0):  # the rest that already arrived
                best = max(best or 0, int(n.payload))
        except psycopg.Error:
            self.close_position_listener()
            raise
        return best

    def close_position_listener(self) -> None:
        if self._position_listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._position_listener.close()
            self._position_listener = None

    def _connect(self) -> psycopg.Connection[Any]:
        pool = self.datastore.pool
        kwargs = pool.kwargs if isinstance(pool.kwargs, dict) else {}
        params = {k: v for k, v in kwargs.items() if k in ("dbname", "host", "port", "user", "password")}
        return psycopg.connect(str(pool.conninfo or ""), autocommit=True, connect_timeout=5, **params)

    def close(self) -> None:  # the datastore belongs to the application
        self.close_listener()


def _bulk(cur: Any, head: str, types: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """``head SELECT * FROM unnest(%s::t1[], ...) tail`` with one array parameter per column."""
    arrays = [list(column) for column in zip(*rows, strict=True)]
    unnest = ", ".join(f"%b::{t}[]" for t in types)  # binary parameters: ~5x faster than text arrays
    cur.execute(f"{head} SELECT * FROM unnest({unnest}) {tail}", arrays)


def _last_by(rows: Sequence[R], key: Callable[[R], Hashable]) -> list[R]:
    """Keep the last row per key (one upsert statement may not touch a row twice)."""
    return list({key(r): r for r in rows}.values())
