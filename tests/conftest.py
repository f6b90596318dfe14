"""Shared pytest fixtures. Sections: PostgreSQL; (add others below in their own section)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from support.postgres import (
    SkipReason,
    create_scratch_database,
    database_url,
    drop_database,
    eventsourcing_env,
    find_postgres,
)

# --------------------------------------------------------------------------- issuer (rule book 6.1)
# Production mode refuses to start without the qualified-invoice issuer: every test process (and the
# subprocesses it starts) runs as this fictional operator. T7123456789012 is the corporate-number
# check-digit example of the tax agency's rules (check digit 7).
TEST_ISSUER_ENV = {
    "CONTRACTS_ISSUER_NAME": "テスト運営株式会社",
    "CONTRACTS_ISSUER_REGISTRATION_NUMBER": "T7123456789012",
    "CONTRACTS_ISSUER_ADDRESS": "東京都千代田区試験町1-2-3",
    "CONTRACTS_ISSUER_CONTACT": "billing@example.invalid",
}
for _key, _value in TEST_ISSUER_ENV.items():
    os.environ.setdefault(_key, _value)

# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """DSN of a fresh scratch database on a PostgreSQL server, dropped at the end of the session.

    Mark tests that use it (or ``pg_env`` / ``fresh_pg_env``) with ``@pytest.mark.postgres``.
    No server: skipped with the reason (see the ``-ra`` summary), but with ``CI=true`` it fails.
    """
    target = find_postgres()
    if isinstance(target, SkipReason):
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"CI=true but no PostgreSQL server could be reached or started: {target}", pytrace=False
            )
        pytest.skip(f"PostgreSQL not available: {target}")
    dsn = create_scratch_database(target.dsn)
    yield dsn
    drop_database(target.dsn, dsn)


@pytest.fixture
def pg_database_url(pg_dsn: str) -> Iterator[str]:
    """``CONTRACTS_DATABASE_URL`` of a new empty database, dropped after the test: the service's own
    path (its settings, its migrations, its PostgreSQL factory), unlike the library settings of
    ``fresh_pg_env``. Mark the test ``@pytest.mark.postgres``."""
    target = find_postgres()
    assert not isinstance(target, SkipReason)  # pg_dsn skipped (or failed under CI) already
    dsn = create_scratch_database(target.dsn)
    try:
        yield database_url(dsn)
    finally:
        drop_database(target.dsn, dsn)


@pytest.fixture
def pg_env(pg_dsn: str) -> dict[str, str]:
    """eventsourcing settings (``PERSISTENCE_MODULE`` = postgres, schema ``public``) for the session database.

    Shared by all tests of the session: use ``fresh_pg_env`` when a test needs empty tables.
    Mark the test ``@pytest.mark.postgres``.
    """
    return eventsourcing_env(pg_dsn)


@pytest.fixture
def fresh_pg_env(pg_dsn: str) -> Iterator[dict[str, str]]:
    """Like ``pg_env`` but in a new empty schema ``test_<uuid>``, dropped (cascade) after the test.

    Mark the test ``@pytest.mark.postgres``.
    """
    schema = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield eventsourcing_env(pg_dsn, schema=schema)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
