"""Fixtures of the reliability scenarios (marker ``reliability``; run by default, so CI runs them).

- ``pg_admin``: an administrative DSN of the shared test server (as ``tests/conftest.py``'s
  ``pg_dsn``: skipped without a server, failed with ``CI=true``);
- ``scratch_url``: a fresh scratch database per test module (``create_scratch_database``),
  dropped afterwards, as a ``CONTRACTS_DATABASE_URL``;
- ``deployment``: processes against that database, all stopped after the test;
- ``private_pg``: a throwaway PostgreSQL server of the test module (``PrivateCluster``: initdb +
  pg_ctl on a free port) for the scenarios that stop, restart or overload a server, never the
  shared one (skipped without the server binaries, failed with ``CI=true``);
- every test runs under a watchdog (``RELIABILITY_TEST_TIMEOUT``, default 240 s) that fails it,
  so its ``finally`` blocks (stopping processes, restarting a stopped server) still run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import psycopg
import pytest
from reliability_kit import Deployment, PrivateCluster, database_url
from support.postgres import SkipReason, create_scratch_database, drop_database, find_postgres

TEST_TIMEOUT = float(os.environ.get("RELIABILITY_TEST_TIMEOUT", "240"))


class ScenarioTimeout(Exception):
    """The watchdog ran out: the scenario took longer than its bound."""


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise ScenarioTimeout(f"reliability scenario exceeded {TEST_TIMEOUT:.0f}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def pg_admin() -> str:
    target = find_postgres()
    if isinstance(target, SkipReason):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no PostgreSQL server could be reached or started: {target}", pytrace=False)
        pytest.skip(f"PostgreSQL not available: {target}")
    return target.dsn


@pytest.fixture(scope="module")
def scratch_url(pg_admin: str) -> Iterator[str]:
    dsn = create_scratch_database(pg_admin)
    try:
        yield database_url(dsn)
    finally:
        drop_database(pg_admin, dsn)


@pytest.fixture
def deployment(scratch_url: str, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(scratch_url, tmp_path)
    try:
        yield d
    finally:
        d.stop_all()


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivateCluster]:
    try:
        cluster = PrivateCluster()
        cluster.start()
    except (RuntimeError, KeyError, OSError, psycopg.Error) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no private PostgreSQL server could be started: {exc}", pytrace=False)
        pytest.skip(f"no private PostgreSQL server (initdb, pg_ctl) for this scenario: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()
