"""A pool whose connections are all busy is not a database that is down (issue 21's
``DatabaseUnavailable``, ``infrastructure.persistence.pool_health``): once one wait for a connection
timed out, a later request on a healthy, merely busy database must still wait the pool's timeout
for a connection, not 0.5 s (``DOWN_PROBE_TIMEOUT``) and then a 503."""

from __future__ import annotations

import threading
import time

import pytest
from eventsourcing.postgres import PostgresDatastore

from infrastructure.persistence.pool_health import DatabaseUnavailable, heal_on_failure

pytestmark = pytest.mark.postgres

POOL_TIMEOUT = 1.5


def _hold(datastore: PostgresDatastore, seconds: float, held: threading.Event) -> None:
    with datastore.get_connection() as conn:
        conn.execute("SELECT 1")
        held.set()
        time.sleep(seconds)


def test_a_busy_pool_is_waited_for_the_pool_timeout_after_one_wait_timed_out() -> None:
    datastore = PostgresDatastore("test", "127.0.0.1", 5432, "postgres", "", connect_timeout=POOL_TIMEOUT,
                                  pool_size=1, max_overflow=0)
    heal_on_failure(datastore)
    try:
        held = threading.Event()
        busy = threading.Thread(target=_hold, args=(datastore, POOL_TIMEOUT + 1.0, held))
        busy.start()
        held.wait(5)
        with pytest.raises(DatabaseUnavailable), datastore.get_connection():  # busy past the timeout: 503
            pass
        started = time.monotonic()  # the connection is free again in about 1 s, within the pool timeout
        with datastore.get_connection() as conn:  # the database is up: wait for the connection
            conn.execute("SELECT 1")
        assert time.monotonic() - started < POOL_TIMEOUT
        busy.join()
    finally:
        datastore.close()
