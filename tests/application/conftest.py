"""Application-level fixtures: the same ``ContractsApplication`` on three event stores.

``app`` is parametrized over POPO (in memory), SQLite (a temporary file) and PostgreSQL (a fresh
schema from ``fresh_pg_env``, marked ``postgres``), always built through the composition root
``infrastructure.bootstrap.build_services``. ``reopen()`` builds a second application over the
same store (None for POPO, whose events live only in the first application's memory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from application.service import ContractsApplication
from infrastructure.bootstrap import Services, build_services
from infrastructure.settings import Settings

STORES = ["popo", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Store:
    kind: str
    env: dict[str, str]
    settings: Settings
    opened: list[Services] = field(default_factory=list)

    def open(self) -> ContractsApplication:
        services = build_services(self.settings, env=dict(self.env))
        self.opened.append(services)
        return services.app

    def close(self) -> None:
        while self.opened:
            self.opened.pop().close()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind = request.param
    if kind == "popo":
        env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    elif kind == "sqlite":
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
               "SQLITE_LOCK_TIMEOUT": "10"}
    else:
        env = dict(request.getfixturevalue("fresh_pg_env"))
    # explicit POLICY defaults (spec) so a developer's CONTRACTS_* variables cannot change the expectations
    settings = Settings(sqlite_path=tmp_path / "unused.sqlite", catalog_path=None, tax_rate="0.10",
                        retention_days=60, annual_auto_renew=True, year_end_break="12-29..01-03",
                        suspension_notice_after_days=14, suspension_grace_days=14, due_months_after=1)
    s = Store(kind, env, settings)
    yield s
    s.close()


@pytest.fixture
def app(store: Store) -> ContractsApplication:
    return store.open()


@pytest.fixture
def reopen(store: Store) -> Callable[[], ContractsApplication | None]:
    """A second, independent application over the same stored events (None for POPO)."""
    return lambda: None if store.kind == "popo" else store.open()
