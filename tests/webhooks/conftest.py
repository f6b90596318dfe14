"""Fixtures of the webhook tests: ``hub`` is the application with its webhook parts on SQLite or
PostgreSQL (a fresh schema), with short POLICY values so retries happen within seconds; and
``receiver`` starts real HTTP receivers on 127.0.0.1, stopped after the test."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "application"))

from receivers import Behaviour, Receiver  # noqa: E402
from webhook_kit import Hub, make_hub  # noqa: E402


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hub]:
    env = dict(request.getfixturevalue("fresh_pg_env")) if request.param == "postgres" else None
    h = make_hub(tmp_path, env)
    yield h
    h.close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(behaviour: Behaviour, hang_seconds: float = 5.0) -> Receiver:
        r = Receiver(behaviour, hang_seconds=hang_seconds).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()
