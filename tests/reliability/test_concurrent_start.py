"""Processes starting at once on an empty database (issue 14, item 9).

Four processes (two ``contracts serve``, two ``contracts projections run``) are started at the
same moment on an empty database, three times (a new database each round). Before the schema
migration step they collided while creating the tables (``CREATE TABLE IF NOT EXISTS`` / ``CREATE
TYPE`` are not safe concurrently in PostgreSQL: a unique violation on ``pg_type``) and one of them
exited. Now every start applies the migrations under a PostgreSQL advisory lock
(``infrastructure.schema``), so all four run, and ``schema_migrations`` records the version once.

The server is a private one of this test (``PrivateCluster``), never the shared one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from reliability_kit import Deployment, PrivateCluster, record_figures, tail

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

ROUNDS = 2
SETTLE = 4.0  # seconds every process must stay up after the servers answered
# Each process imports everything first, then waits for the gate file and runs the command: the
# four start their work within a millisecond or two of each other (Python's import time would
# otherwise spread them over a second and hide the race).
GATED = """
import os, runpy, sys, time
import api.app, eventsourcing.postgres, infrastructure.read_side  # noqa: the slow imports, before the gate
gate = os.environ["RELIABILITY_START_GATE"]
open(f"{gate}.{os.getpid()}.waiting", "w").close()
while not os.path.exists(gate):
    time.sleep(0.0005)
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def test_four_processes_starting_at_once_on_an_empty_database(private_pg: PrivateCluster, tmp_path: Path) -> None:
    ready_after: list[float] = []
    for round_ in range(ROUNDS):
        name = f"contracts_start_{round_}"
        with psycopg.connect(private_pg.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        workdir = tmp_path / name
        workdir.mkdir()
        deployment = Deployment(f"postgresql://postgres@127.0.0.1:{private_pg.port}/{name}", workdir,
                                mode="sandbox")
        try:
            gate = workdir / "go"
            deployment.extra_env["RELIABILITY_START_GATE"] = str(gate)
            procs = [deployment.api("api-a"), deployment.api("api-b"), deployment.runner("runner-a"),
                     deployment.runner("runner-b")]
            for proc in procs:
                proc.env = deployment.env
                module = proc.argv[2]  # [python, "-m", module, *args]
                proc.argv = [sys.executable, "-c", GATED, module, *proc.argv[3:]]
                proc.start()
            deadline = time.monotonic() + 60
            while len(list(workdir.glob("go.*.waiting"))) < len(procs):  # all imported, waiting at the gate
                assert time.monotonic() < deadline and all(p.alive for p in procs), [tail(p.log) for p in procs]
                time.sleep(0.05)
            gate.touch()
            started = time.monotonic()
            for api in procs[:2]:
                ready_after.append(api.wait_ready(timeout=60))  # type: ignore[attr-defined]
            deadline = time.monotonic() + SETTLE
            while time.monotonic() < deadline:
                for proc in procs:
                    assert proc.alive, f"round {round_}: {proc.name} exited: {tail(proc.log)}"
                time.sleep(0.2)
            for api in procs[:2]:
                assert httpx.get(api.base + "/readyz", timeout=5).status_code == 200  # type: ignore[attr-defined]
            with psycopg.connect(deployment.url) as conn:
                versions = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
            assert versions and len(versions) == len(set(versions)), versions
            logs = deployment.logs()
            assert "Traceback" not in logs and "UniqueViolation" not in logs, logs[-2000:]
            took = time.monotonic() - started
        finally:
            deployment.stop_all()
    record_figures("concurrent_start", {"rounds": ROUNDS, "processes": 4, "ready_s": [round(r, 2) for r in ready_after],
                                        "last_round_s": round(took, 1)})
