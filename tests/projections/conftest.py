"""Fixtures of the projection tests: the same application and read models on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from infrastructure.bootstrap import (  # noqa: E402
    Services,
    build_read_models,  # noqa: E402
    build_services,
)
from infrastructure.read_side import ReadModelsImpl  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402


@pytest.fixture
def sqlite_services(tmp_path: Path) -> Iterator[Services]:
    services = build_services(Settings(database_url=None, sqlite_path=tmp_path / "contracts.sqlite"))
    yield services
    services.close()


@pytest.fixture
def pg_services(fresh_pg_env: dict[str, str]) -> Iterator[Services]:
    services = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    yield services
    services.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest) -> Services:
    """Parametrised over both stores: every test using it runs on SQLite and on PostgreSQL."""
    name = "sqlite_services" if request.param == "sqlite" else "pg_services"
    result: Services = request.getfixturevalue(name)
    return result


@pytest.fixture
def read_models(services: Services) -> Iterator[ReadModelsImpl]:
    models = build_read_models(services)
    yield models
    models.close()
