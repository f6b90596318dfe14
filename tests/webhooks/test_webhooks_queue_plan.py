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
