"""Fixtures for the web-page tests: the API tests' harness (``tests/api/api_harness.py``, reused
as it is; ``tests/api`` is put on ``sys.path`` here)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from api_harness import Harness, make_harness  # noqa: E402


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Harness]:
    h = make_harness(tmp_path)
    yield h
    h.close()
