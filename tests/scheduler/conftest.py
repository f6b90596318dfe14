"""Fixtures for the deadline sweep and the scheduler: a "world" is one store (SQLite file or
PostgreSQL schema) with its application, deadlines source, a FixedClock and a Sweeper."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from scan_deadlines import ScanDeadlines

from application.clock import FixedClock
from application.service import ContractsApplication
from application.sweep import DeadlineSource, Sweeper, SweepReport
from domain.calendar import JST
from infrastructure.composition import Services, build_services
from infrastructure.postgres_testing import eventsourcing_env
from infrastructure.read_side import build_read_models
from infrastructure.settings import Settings


def jst(y: int, m: int, d: int, h: int = 10, minute: int = 0) -> datetime:
    """An instant given in Tokyo time, as aware UTC."""
    return datetime(y, m, d, h, minute, tzinfo=JST).astimezone(UTC)


CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
              "contact_name": "Hanako Sample", "contact_email": "hanako@example.invalid"}


def build_deadlines(services: Services, source: str = "projection") -> tuple[DeadlineSource, Callable[[], None]]:
    """The deadlines source and a function that stops it: the real read models with their
    runner in a thread (``projection``), the read models of a store whose runner runs elsewhere
    (``follower``: one runner per projection), or the test-only ``scan`` of every aggregate."""
    if source == "scan":
        return ScanDeadlines(services.app), lambda: None
    models = build_read_models(services, in_process=True, start_runner=source == "projection",
                               poll_interval=0.05)
    return models, models.stop


@dataclass
class World:
    services: Services
    deadlines: DeadlineSource
    clock: FixedClock
    sweeper: Sweeper
    stop: Callable[[], None]
    reports: list[SweepReport] = field(default_factory=list)

    @property
    def app(self) -> ContractsApplication:
        return self.services.app

    def sweep_on(self, day: date, hour: int = 6) -> SweepReport:
        """Set the clock to ``day`` (JST, early morning) and run one sweep."""
        self.clock.set(jst(day.year, day.month, day.day, hour))
        report = self.sweeper.run()
        self.reports.append(report)
        return report

    def daily(self, first: date, last: date) -> None:
        day = first
        while day <= last:
            self.sweep_on(day)
            day += timedelta(days=1)

    def names(self, contract_id: uuid.UUID) -> list[str]:
        return [type(e).__name__ for e in self.app.events.get(contract_id)]

    def event(self, contract_id: uuid.UUID, name: str) -> Any:
        found = [e for e in self.app.events.get(contract_id) if type(e).__name__ == name]
        assert len(found) == 1, f"{name}: {len(found)} events in {self.names(contract_id)}"
        return found[0]

    def close(self) -> None:
        self.stop()
        self.services.close()


WorldFactory = Callable[[], World]


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
