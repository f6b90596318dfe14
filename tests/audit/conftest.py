"""Fixtures for the audit tests (spec 10, issue 6): ``store`` is one empty store on SQLite or
PostgreSQL (``fresh_pg_env``) with raw access to every stored byte and to SQL."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from audit_kit import Store
from psycopg import sql

from infrastructure.bootstrap import Services, build_services
from infrastructure.settings import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: list[Services] = []
    settings = Settings(sqlite_path=tmp_path / "contracts.sqlite", database_url=None)
    if request.param == "sqlite":
        path = settings.sqlite_path

        def open_services() -> Services:
            opened.append(build_services(settings))
            return opened[-1]

        def raw_bytes() -> bytes:
            return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("contracts.sqlite*")))

        def execute(statement: str, params: tuple[Any, ...]) -> None:
            with sqlite3.connect(path) as conn:
                conn.execute(statement.replace("%s", "?"), tuple(p.hex if isinstance(p, uuid.UUID) else p
                                                                  for p in params))
        made = Store("sqlite", open_services(), open_services, raw_bytes, execute, "stored_events", "event_hashes")
    else:
        env: dict[str, str] = request.getfixturevalue("fresh_pg_env")
        schema = env["POSTGRES_SCHEMA"]
        dsn = psycopg.conninfo.make_conninfo(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                                             port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                                             password=env["POSTGRES_PASSWORD"])

        def open_services() -> Services:
            opened.append(build_services(settings, env=dict(env)))
            return opened[-1]

        def raw_bytes() -> bytes:
            chunks: list[bytes] = []
            with psycopg.connect(dsn) as conn:
                tables = [r[0] for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
                for table in tables:
                    for row in conn.execute(sql.SQL("SELECT * FROM {}.{}").format(
                            sql.Identifier(schema), sql.Identifier(table))):
                        for value in row:
                            chunks.append(bytes(value) if isinstance(value, (bytes, memoryview))
                                          else str(value).encode())
            return b"\x00".join(chunks)

        def execute(statement: str, params: tuple[Any, ...]) -> None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'SET search_path TO "{schema}"')
                conn.execute(statement.encode(), params)

        made = Store("postgres", open_services(), open_services, raw_bytes, execute,
                     "contracts_events", "contracts_event_hashes")
    yield made
    for services in opened:
        services.close()


