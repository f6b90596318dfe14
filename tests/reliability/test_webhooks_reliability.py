"""Webhooks under faults (spec 12): ``kill -9`` of ``contracts webhooks run`` mid-batch, a database
restart (a private PostgreSQL server), and 1,000 notifications; on SQLite and PostgreSQL.

Checked every time: every queued notification reaches the receiver (nothing lost); a duplicate
only of a notification whose attempt was in flight when its sender died (its lease expired), with
the same id; and per contract the receiver sees the notifications in position order (a later one
is never sent before the earlier one was recorded delivered, so even a duplicate arrives in order).
Receivers listen on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from reliability_kit import CLI, PrivateCluster, Proc, database_url, record_figures, tail

sys.path.insert(0, str(Path(__file__).parents[1] / "webhooks"))
sys.path.insert(0, str(Path(__file__).parents[1] / "application"))
from receivers import Receiver, wait_until  # noqa: E402
from support.postgres import create_scratch_database, drop_database  # noqa: E402
from webhook_kit import FAST, overdue_contract  # noqa: E402

from application.notifications.ports import DELIVERED  # noqa: E402
from infrastructure.bootstrap import Services, WebhookParts, build_services, build_webhooks  # noqa: E402  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402

pytestmark = [pytest.mark.reliability]


@dataclass
class Store:
    kind: str
    env: dict[str, str]  # CONTRACTS_* of the worker processes
    settings: Settings

    def open(self) -> tuple[Services, WebhookParts]:
        services = build_services(self.settings)
        return services, build_webhooks(services, in_process=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    fast = {f"CONTRACTS_{k.upper()}": str(v) for k, v in FAST.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k}
    env.update(fast, PYTHONUNBUFFERED="1", CONTRACTS_LOG_LEVEL="INFO")
    if request.param == "sqlite":
        path = tmp_path / "contracts.sqlite"
        env["CONTRACTS_SQLITE_PATH"] = str(path)
        yield Store("sqlite", env, Settings(sqlite_path=path, database_url=None, **FAST))
        return
    admin = request.getfixturevalue("pg_admin")
    dsn = create_scratch_database(admin)
    url = database_url(dsn)
    env["CONTRACTS_DATABASE_URL"] = url
    try:
        yield Store("postgres", env, Settings(database_url=url, **FAST))
    finally:
        drop_database(admin, dsn)


# the two kinds the scenarios count (each contract's invoice.issued notifications are not counted)
OVERDUE_AND_PAYMENTS = ["invoice.overdue", "payment.received"]


def payments(app: Any, contracts: int, per_contract: int) -> dict[str, list[int]]:
    """``contracts`` overdue April invoices of 24,200 yen, each paid in ``per_contract`` parts of
    100 yen: one invoice.overdue and ``per_contract`` payment.received notifications per contract.
    Returns each contract's notification positions in order."""
    order: dict[str, list[int]] = {}
    for _ in range(contracts):
        cid, april = overdue_contract(app)
        for day in range(per_contract):
            app.record_payment(cid, april, 100, date(2026, 6, 2), datetime(2026, 6, 2, 1, day % 60, tzinfo=UTC))
        order[str(cid)] = []
    return order


def worker(store: Store, tmp_path: Path, name: str = "webhooks") -> Proc:
    return Proc(name, [*CLI, "webhooks", "run"], store.env, tmp_path / f"{name}.log")


def check_received(receiver: Receiver, parts: WebhookParts, endpoint_id: Any) -> Counter[str]:
    """Every queued notification delivered; in position order per contract; returns id counts."""
    rows = parts.webhooks.store.deliveries(endpoint_id, 0, 100_000, None)
    assert rows and all(d.status == DELIVERED for d in rows), Counter(d.status for d in rows)
    bodies = receiver.bodies()
    counts = Counter(b["id"] for b in bodies)
    assert set(counts) == {str(d.row.notification_id) for d in rows}  # nothing lost, nothing foreign
    last: dict[str, int] = {}
    for b in bodies:
        assert b["position"] >= last.get(b["aggregate_id"], 0), f"out of order for {b['aggregate_id']}"
        last[b["aggregate_id"]] = b["position"]
    return counts


def test_spec12_kill9_of_the_delivery_process_mid_batch_loses_nothing(store: Store, tmp_path: Path) -> None:
    receiver = Receiver(lambda n, got: ("slow", 0.01, 200)).start()
    services, parts = store.open()
    proc = worker(store, tmp_path)
    try:
        endpoint, _ = parts.webhooks.admin.register(receiver.url, OVERDUE_AND_PAYMENTS, datetime.now(UTC),
                                                    "reliability")
        payments(services.app, contracts=20, per_contract=14)  # 20 x 15 = 300 notifications
        total = 300
        kills = 0
        proc.start()
        for share in (0.2, 0.45, 0.7):
            assert wait_until(lambda share=share: len(receiver.received) >= total * share, 60), tail(proc.log)
            proc.kill9()  # mid-batch: attempts are in flight (concurrency 4, 10 ms each)
            kills += 1
            proc.start()
        assert wait_until(lambda: parts.webhooks.store.counts().get(DELIVERED, 0) == total, 90), (
            parts.webhooks.store.counts(), tail(proc.log))
        counts = check_received(receiver, parts, endpoint.endpoint_id)
        duplicates = sum(c - 1 for c in counts.values())
        # only what was sent and not yet stored at a kill comes again: the attempts in flight (at most the
        # concurrency) and the outcomes waiting for the recorder's next commit (at most the concurrency)
        assert duplicates <= kills * 2 * int(FAST["webhook_concurrency"]), duplicates
        record_figures("webhooks_kill9", {"store": store.kind, "notifications": total, "kills": kills,
                                          "duplicates": duplicates, "received": len(receiver.received)})
    finally:
        proc.stop()
        receiver.stop()
        parts.stop()
        services.close()


def test_spec12_a_thousand_notifications_all_delivered_in_order_per_contract(store: Store, tmp_path: Path) -> None:
    receiver = Receiver(lambda n, got: 200).start()
    services, parts = store.open()
    proc = worker(store, tmp_path)
    try:
        endpoint, _ = parts.webhooks.admin.register(receiver.url, OVERDUE_AND_PAYMENTS, datetime.now(UTC),
                                                    "reliability")
        payments(services.app, contracts=50, per_contract=19)  # 50 x 20 = 1,000 notifications
        started = time.monotonic()
        proc.start()
        assert wait_until(lambda: parts.webhooks.store.counts().get(DELIVERED, 0) == 1000, 120), (
            parts.webhooks.store.counts(), tail(proc.log))
        elapsed = time.monotonic() - started
        counts = check_received(receiver, parts, endpoint.endpoint_id)
        assert len(counts) == 1000 and sum(counts.values()) == 1000  # no fault: no duplicate
        record_figures("webhooks_1000", {"store": store.kind, "seconds": round(elapsed, 2),
                                         "per_second": round(1000 / elapsed, 1)})
    finally:
        proc.stop()
        receiver.stop()
        parts.stop()
        services.close()


@pytest.mark.postgres
def test_spec12_a_database_restart_delays_delivery_and_loses_nothing(private_pg: PrivateCluster,
                                                                     tmp_path: Path) -> None:
    cluster = private_pg  # tests/reliability/conftest.py: started, destroyed after the module
    receiver = Receiver(lambda n, got: ("slow", 0.02, 200)).start()
    proc: Proc | None = None
    services = parts = None
    try:
        with psycopg.connect(cluster.admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE webhooks")
        url = f"postgresql://postgres@127.0.0.1:{cluster.port}/webhooks"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k}
        env.update({f"CONTRACTS_{k.upper()}": str(v) for k, v in FAST.items()}, CONTRACTS_DATABASE_URL=url,
                   PYTHONUNBUFFERED="1")
        store = Store("postgres", env, Settings(database_url=url, **FAST))
        services, parts = store.open()
        endpoint, _ = parts.webhooks.admin.register(receiver.url, OVERDUE_AND_PAYMENTS, datetime.now(UTC),
                                                    "reliability")
        payments(services.app, contracts=10, per_contract=19)  # 200 notifications
        parts.stop()
        services.close()
        services = parts = None
        proc = worker(store, tmp_path)
        proc.start()
        assert wait_until(lambda: len(receiver.received) >= 40, 60), tail(proc.log)
        cluster.stop("immediate")  # a crash of the database server mid-delivery
        time.sleep(4)
        cluster.start()
        services, parts = store.open()
        assert wait_until(lambda: parts.webhooks.store.counts().get(DELIVERED, 0) == 200, 90), (
            parts.webhooks.store.counts(), tail(proc.log))
        assert proc.alive, "the worker process must survive the restart by itself"
        counts = check_received(receiver, parts, endpoint.endpoint_id)
        duplicates = sum(c - 1 for c in counts.values())
        assert duplicates <= 2 * int(FAST["webhook_concurrency"])  # in flight, and outcomes not stored
        record_figures("webhooks_db_restart", {"notifications": 200, "duplicates": duplicates})
    finally:
        if proc is not None:
            proc.stop()
        if parts is not None:
            parts.stop()
        if services is not None:
            services.close()
        receiver.stop()
        if not cluster.running():
            cluster.start()


