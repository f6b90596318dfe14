"""Fixtures for the deadline sweep and the scheduler: a "world" is one store (SQLite file or
PostgreSQL schema) with its application, deadlines source, a FixedClock and a Sweeper."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from scheduler_kit import CONTRACTOR, World, build_deadlines, jst  # noqa: F401
from support.postgres import eventsourcing_env

from application.clock import FixedClock
from application.sweep import Sweeper
from infrastructure.bootstrap import Services, build_services
from infrastructure.settings import Settings


@pytest.fixture
def pg_schemas(pg_dsn: str) -> Iterator[Callable[[], dict[str, str]]]:
    """Make empty schemas in the session database (eventsourcing env per schema); dropped after the test."""
    made: list[str] = []

    def make() -> dict[str, str]:
        schema = f"test_{uuid.uuid4().hex}"
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        made.append(schema)
        return eventsourcing_env(pg_dsn, schema=schema)

    yield make
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'")
        for schema in made:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _world(services: Services, start: datetime, source: str = "projection", **sweeper_options: Any) -> World:
    deadlines, stop = build_deadlines(services, source)
    clock = FixedClock(start)
    return World(services, deadlines, clock, Sweeper(services.app, deadlines, clock, **sweeper_options), stop)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., World]]:
    """``store()`` builds a new, empty world on the parametrised backend (call twice for twins)."""
    worlds: list[World] = []
    counter = iter(range(1000))

    def make(source: str = "projection", **sweeper_options: Any) -> World:
        settings = Settings(sqlite_path=tmp_path / f"w{next(counter)}.sqlite", database_url=None)
        if request.param == "sqlite":
            services = build_services(settings)
        else:
            pg_schemas = request.getfixturevalue("pg_schemas")
            services = build_services(settings, env=pg_schemas())
        world = _world(services, jst(2026, 3, 1, 9), source, **sweeper_options)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()


@pytest.fixture
def pg_world(pg_schemas: Callable[[], dict[str, str]], tmp_path: Path) -> Iterator[Callable[..., World]]:
    """Worlds on PostgreSQL; ``pg_world(env)`` opens another world on the same schema (the first
    world of a schema runs the projections, the others follow)."""
    worlds: list[World] = []
    schemas: set[str] = set()

    def make(env: dict[str, str] | None = None, **sweeper_options: Any) -> World:
        env = env if env is not None else pg_schemas()
        source = "follower" if env["POSTGRES_SCHEMA"] in schemas else "projection"
        schemas.add(env["POSTGRES_SCHEMA"])
        services = build_services(Settings(sqlite_path=tmp_path / "unused.sqlite", database_url=None), env=env)
        world = _world(services, jst(2026, 3, 1, 9), source, **sweeper_options)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()
