"""Spec 12 on PostgreSQL: a claim costs the same with 3,000 rows queued as with ten. A month start
queues 100,000 notifications at once, long after the table's statistics were gathered; planned
on those statistics, the claim fetched every pending row and sorted them all for each batch of
16 (38 ms at 20,000 rows and growing: the worker fell behind the month start)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from webhook_kit import make_hub

from application.notifications.ports import QueueRow

pytestmark = [pytest.mark.postgres]


def test_spec12_a_claim_reads_the_due_queue_in_order_and_never_sorts_it(tmp_path: Path, fresh_pg_env: dict[str, str],
                                                                        pg_dsn: str) -> None:
    hub = make_hub(tmp_path, fresh_pg_env)
    try:
        endpoint, _ = hub.register("http://127.0.0.1:9/hook", ["invoice.issued"])
        store = hub.store
        with psycopg.connect(pg_dsn, autocommit=True) as conn:  # statistics of the empty queue
            conn.execute(f"ANALYZE {store.prefix}wh_deliveries")  # type: ignore[arg-type]
        now = datetime.now(UTC)
        store.add_rows([QueueRow(endpoint.endpoint_id, uuid.uuid4(), i, "invoice.issued", 1, cid, cid, None,
                                 now) for i, cid in enumerate((uuid.uuid4() for _ in range(3000)), start=1)], now)
        params = [now, now, 16]
        with store._write() as cur:
            store.claim_plan(cur)
            cur.execute("EXPLAIN " + store._sql(store.claim_sql()), params)
            plan = "\n".join(str(next(iter(r.values()))) for r in cur.fetchall())
        assert "wh_deliveries_due" in plan and "Sort" not in plan, plan
        claimed = store.claim(now, 16, now + timedelta(seconds=60))
        assert [c.row.position for c in claimed] == list(range(1, 17))  # the oldest, in order
    finally:
        hub.close()


def test_issue21_the_queue_table_leaves_room_for_the_lease_update_also_in_an_existing_database(
        tmp_path: Path, fresh_pg_env: dict[str, str], pg_dsn: str) -> None:
    """Each queue row is updated twice (leased, then its outcome); with half of each page left free
    the lease is written on the row's own page, a heap-only update (no entry in the six indexes). A
    queue made before (fillfactor 100, PostgreSQL's default) gets the setting when the tables are
    ensured again (every start)."""
    hub = make_hub(tmp_path, fresh_pg_env)
    try:
        store = hub.store
        table = f"{store.prefix}wh_deliveries"
        options = f"SELECT reloptions FROM pg_class WHERE oid = '{table}'::regclass"
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            assert conn.execute(options).fetchone() == (["fillfactor=50"],)  # type: ignore[arg-type]
            conn.execute(f"ALTER TABLE {table} RESET (fillfactor)")  # type: ignore[arg-type]
            assert conn.execute(options).fetchone() == (None,)  # type: ignore[arg-type]
        store.create_table()  # what the schema migration runs on every start
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            assert conn.execute(options).fetchone() == (["fillfactor=50"],)  # type: ignore[arg-type]
        endpoint, _ = hub.register("http://127.0.0.1:9/hook", ["invoice.issued"])
        now = datetime.now(UTC)
        store.add_rows([QueueRow(endpoint.endpoint_id, uuid.uuid4(), i, "invoice.issued", 1, cid, cid, None, now)
                        for i, cid in enumerate((uuid.uuid4() for _ in range(600)), start=1)], now)
        pages = f"SELECT position, (ctid::text::point)[0] FROM {table} ORDER BY position"
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            before = dict(conn.execute(pages).fetchall())  # type: ignore[arg-type]
            claimed = store.claim(now, 16, now + timedelta(seconds=60))
            after = dict(conn.execute(pages).fetchall())  # type: ignore[arg-type]
        assert len(claimed) == 16 and len(set(before.values())) > 1  # the rows fill several pages
        assert all(after[c.row.position] == before[c.row.position] for c in claimed)  # leased in place
    finally:
        hub.close()
