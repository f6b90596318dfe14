"""Fixtures for the HTTP API tests: ``api`` is a sandbox-mode harness on a fresh SQLite file;
``any_api`` runs the same test on SQLite and on PostgreSQL: a new database (``pg_database_url``)
migrated by the service's own migrations, as ``contracts serve`` does at start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import Harness, make_harness


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Harness]:
    h = make_harness(tmp_path)
    yield h
    h.close()


@pytest.fixture
def production_api(tmp_path: Path) -> Iterator[Harness]:
    h = make_harness(tmp_path, mode="production")
    yield h
    h.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    url = request.getfixturevalue("pg_database_url") if request.param == "postgres" else None
    h = make_harness(tmp_path, database_url=url)
    yield h
    h.close()
