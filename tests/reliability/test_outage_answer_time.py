"""A request that arrives while the database is down is answered 503 within the pool timeout, not
held until the server is back (docs/reliability.md: "never a hang past the pool timeout").

Found by ``test_database_restart.py``'s probes (issue 21's notes): a GET of a contract sent right
after the stop hung until the server returned and was answered 200 after 8.9 s. The cause: the
event store's reads keep the library's ``@retry`` (10 attempts, 0.2 s apart) and psycopg_pool's
``PoolTimeout`` is an ``OperationalError``, so each attempt waited the whole pool timeout again:
up to 10 x 5 s; and two reads of one contract fast-forward it one after the other (the library's
lock per cached aggregate), so the second waited the timeout again after the first. Four requests
at once, on a contract read before the stop; the server stays down longer than the bound, so a
held request shows as a late answer (or a 200 after the restart) instead of a 503 in time.

The server stopped is a private one of this module (``private_pg``), always started again.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from reliability_kit import CONTRACTOR, Deployment, PrivateCluster, apply_body, assert_problem, client

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

POOL_TIMEOUT = 5.0  # POSTGRES_CONNECT_TIMEOUT's default (infrastructure/postgres_params.py)
BOUND = POOL_TIMEOUT + 3.0  # answered within this after it was sent (the margin: a loaded 2-core machine)
DOWN = BOUND + 6.0  # the server stays down longer than any request may wait


def test_requests_during_an_outage_are_answered_503_within_the_pool_timeout(private_pg: PrivateCluster,
                                                                             tmp_path: Path) -> None:
    with psycopg.connect(private_pg.admin_dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE contracts")
    deployment = Deployment(f"postgresql://postgres@127.0.0.1:{private_pg.port}/contracts", tmp_path,
                            mode="production")
    answers: dict[str, tuple[float, int]] = {}
    threads: list[threading.Thread] = []
    try:
        key = deployment.create_key("billing", "outage-client")
        api = deployment.api()
        api.start_ready()
        with client(api.base, key) as http:
            r = http.post("/v1/contracts", json=apply_body("OUTAGE-1"))
            assert r.status_code == 201, r.text
            known = r.json()["contract_id"]
            assert http.get(f"/v1/contracts/{known}").status_code == 200  # read once: cached in the process
        private_pg.stop("fast")
        stopped = time.monotonic()

        def ask(name: str, method: str, path: str, body: dict[str, object] | None = None) -> None:
            with client(api.base, key, timeout=DOWN + 20) as fresh:  # its own connection
                t0 = time.monotonic()
                r = fresh.request(method, path, json=body)
                answers[name] = (time.monotonic() - t0, r.status_code)
                if r.status_code == 503:
                    assert_problem(r, 503)
                    assert r.headers.get("retry-after")

        requests = [
            ("read a cached contract", "GET", f"/v1/contracts/{known}", None),
            ("read its invoices", "GET", f"/v1/contracts/{known}/invoices", None),
            ("a command", "POST", f"/v1/contracts/{known}/contractor", {"contractor": {**CONTRACTOR, "name": "X"}}),
            ("apply", "POST", "/v1/contracts", apply_body("OUTAGE-2")),
        ]
        threads += [threading.Thread(target=ask, args=args, daemon=True) for args in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.1, stopped + DOWN - time.monotonic()))
        held = sorted(name for name, _, _, _ in requests if name not in answers)
    finally:
        if not private_pg.running():
            private_pg.start()
        for t in threads:
            t.join(30)
        deployment.stop_all()
    assert not held, f"still unanswered {DOWN:.0f} s into the outage: {held}; answered: {answers}"
    late = {name: (round(s, 1), status) for name, (s, status) in answers.items() if s > BOUND or status != 503}
    assert not late, f"each must be 503 within {BOUND} s: {late}"
