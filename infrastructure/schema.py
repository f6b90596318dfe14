"""Schema migrations, applied once and never concurrently (issue 14, item 9).

``CREATE TABLE IF NOT EXISTS`` (and the library's ``CREATE TYPE``) is not safe when two
PostgreSQL sessions run it at once: both see no table, one fails on a unique violation in
``pg_type``, and a process starting beside another on an empty database exited. So every
process, before it builds anything, calls ``migrate`` (``contracts migrate`` does it alone):

- on PostgreSQL it takes a session advisory lock (``pg_advisory_lock(SCHEMA_LOCK)``) on a
  connection of its own, so concurrent starts wait for each other here, one at a time;
- under the lock, every numbered migration not yet in ``schema_migrations`` runs and is recorded
  (version, description, applied_at), then the tables every part creates for itself
  (``CREATE ... IF NOT EXISTS``: events, chain hashes, contract keys, read tables and tracking,
  API keys, idempotency keys, sandbox clock, snapshots) are ensured, so a table added to the code
  later is also first created under the lock;
- the lock is released; the process's own parts then find their tables (``CREATE ... IF NOT
  EXISTS`` of an existing table changes nothing), and its event recorder skips its
  ``create_table`` (the library's ``CREATE OR REPLACE FUNCTION`` rewrites a catalog row even when
  nothing changed, and fails beside another process's migration).

A part that creates tables must also be built in ``ensure_tables``.

Version 1 is the baseline (the tables as the code creates them). A change that ``IF NOT EXISTS``
cannot express (a new column, a backfill) is a new numbered step in ``MIGRATIONS``. SQLite
serialises schema changes through its file lock; there the same steps run without a lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from infrastructure.settings import Settings

log = logging.getLogger("contracts.schema")

SCHEMA_LOCK = 0x636F6E7472616374  # "contract": the advisory lock key of schema changes (any fixed bigint)
TABLE = "schema_migrations"  # (SQLite statements name it literally)
LOCK_WAIT_SECONDS = 120  # how long a start waits for another process's migration


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Settings], None]


def ensure_tables(settings: Settings) -> None:
    """Every part of the service created once, tables created if missing, then closed."""
    from infrastructure.bootstrap import build_api_store, build_services, persistence_env
    from infrastructure.read_store import open_read_store
    from infrastructure.snapshots import open_snapshots
    from infrastructure.webhooks import open_webhook_store

    env = {**persistence_env(settings), "CREATE_TABLE": "y"}
    if settings.database_url is not None:  # one connection is enough to create tables
        env.update({"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "1"})
    services = build_services(settings, env, migrate=False)  # events, chain hashes, contract keys
    try:
        open_read_store(services.app)  # read tables and their tracking
        open_webhook_store(services.app)  # endpoints, deliveries, attempts
        open_snapshots(services.app)
        store = build_api_store(persistence_env(settings))  # API keys, idempotency keys, clock
        try:
            store.setup()
        finally:
            store.close()
    finally:
        services.close()


def backfill_transfers(settings: Settings) -> None:
    """Rule book 7: the transfers read table (``rm_transfers``) filled from the event log, for a
    store whose transfers were recorded before the table existed (its runner is past them)."""
    from application.projections.transfers import backfill_transfers as backfill
    from infrastructure.bootstrap import build_services, persistence_env
    from infrastructure.read_store import open_read_store

    env = {**persistence_env(settings), "CREATE_TABLE": "y"}  # the read tables, the new one too
    if settings.database_url is not None:
        env.update({"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "1"})
    services = build_services(settings, env, migrate=False)
    try:
        count = backfill(services.app, open_read_store(services.app))
        log.info("transfers read table: %d transfer(s) from the log", count)
    finally:
        services.close()


def fill_customer_numbers(settings: Settings) -> None:
    """Contract search (issue 19): ``rm_contracts.customer_number`` (the column and its index are
    ensured with the tables) for the contracts projected before it, from their ``Opened`` events,
    500 at a time. Contracts projected from now on carry it from their own ``Opened``."""
    from application.audit import opened_contracts
    from infrastructure.bootstrap import build_services, persistence_env
    from infrastructure.read_store import open_read_store

    ensure_tables(settings)
    env = {**persistence_env(settings), "CREATE_TABLE": "n"}
    if settings.database_url is not None:
        env.update({"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "1"})
    services = build_services(settings, env, migrate=False)
    try:
        store = open_read_store(services.app)
        missing = set(store.contracts_without_customer())
        filled, page = 0, {}
        for contract_id, customer_number in opened_contracts(services.app) if missing else ():
            if contract_id in missing:
                page[contract_id] = customer_number
            if len(page) == 500:
                filled, page = filled + store.set_customer_numbers(page), {}
        filled += store.set_customer_numbers(page) if page else 0
        log.info("schema migration 3: customer number filled in for %d of %d projected contracts", filled,
                 len(missing))
    finally:
        services.close()


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: events, chain hashes, contract keys, read tables, webhooks, API store, snapshots",
              ensure_tables),
    Migration(2, "transfers read table (rule book 7 unapplied transfers), backfilled from the log", backfill_transfers),
    Migration(3, "contract search: rm_contracts.customer_number, filled from the contracts' Opened events",
              fill_customer_numbers),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def migrate(settings: Settings) -> list[int]:
    """Apply the pending migrations (and ensure every table); returns the versions applied now."""
    if settings.database_url is None:
        return _migrate_sqlite(settings)
    with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SET lock_timeout = 0")
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{LOCK_WAIT_SECONDS}s")))
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            conn.execute("RESET statement_timeout")
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, description text NOT "
                                 "NULL, applied_at timestamptz NOT NULL DEFAULT now())").format(sql.Identifier(TABLE)))
            done = {int(v) for (v,) in conn.execute(sql.SQL("SELECT version FROM {}").format(sql.Identifier(TABLE)))}
            applied = _apply(settings, done, lambda m: conn.execute(
                sql.SQL("INSERT INTO {} (version, description) VALUES (%s, %s)").format(sql.Identifier(TABLE)),
                (m.version, m.description)))
            if not applied:
                ensure_tables(settings)  # tables added to the code since: created under the lock too
            return applied
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


def _apply(settings: Settings, done: set[int], record: Callable[[Migration], Any]) -> list[int]:
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        log.info("schema migration %d: %s", migration.version, migration.description)
        migration.apply(settings)
        record(migration)
        applied.append(migration.version)
    return applied


def _migrate_sqlite(settings: Settings) -> list[int]:
    import sqlite3

    with sqlite3.connect(settings.sqlite_path, timeout=30) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT "
                     "NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
        done = {int(v) for (v,) in conn.execute("SELECT version FROM schema_migrations")}
    applied = _apply(settings, done, lambda m: _record_sqlite(settings, m))
    return applied


def _record_sqlite(settings: Settings, migration: Migration) -> None:
    import sqlite3

    with sqlite3.connect(settings.sqlite_path, timeout=30) as conn:
        conn.execute("INSERT OR IGNORE INTO schema_migrations (version, description) VALUES (?, ?)",
                     (migration.version, migration.description))


def schema_version(settings: Settings) -> int | None:
    """The highest applied migration (None: never migrated)."""
    try:
        if settings.database_url is None:
            import sqlite3

            with sqlite3.connect(settings.sqlite_path, timeout=30) as conn:
                row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        else:
            with psycopg.connect(settings.database_url, connect_timeout=5) as pg:
                row = pg.execute(sql.SQL("SELECT MAX(version) FROM {}").format(sql.Identifier(TABLE))).fetchone()
    except Exception:  # noqa: BLE001 - no table yet, or no database: not migrated
        return None
    return int(row[0]) if row and row[0] is not None else None
