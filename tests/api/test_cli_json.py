"""Issue 20: every command that prints results or tables has ``--json`` (one JSON document on
stdout), here on an embedded SQLite store with one contract applied through the application."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "c.sqlite"
    monkeypatch.setenv("CONTRACTS_SQLITE_PATH", str(path))
    monkeypatch.delenv("CONTRACTS_DATABASE_URL", raising=False)
    monkeypatch.setenv("CONTRACTS_MODE", "production")
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> object:
    assert main(list(argv)) == code
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1, out  # one document, nothing else on stdout
    return json.loads(out)


def test_every_listing_command_prints_json(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    migrated = run_json(capsys, "migrate", "--json")
    assert isinstance(migrated, dict) and migrated["version"] == migrated["latest"]
    assert run_json(capsys, "migrate", "--status", "--json") == {**migrated, "applied": None}

    status = run_json(capsys, "projections", "status", "--json")
    assert status == {"position": 0, "last": 0, "behind": 0, "database": f"sqlite:{store}", "damaged": []}
    rebuilt = run_json(capsys, "projections", "rebuild", "--json")
    assert isinstance(rebuilt, dict) and rebuilt["events"] == 0 and rebuilt["position"] == 0

    types = run_json(capsys, "webhooks", "types", "--json")
    assert isinstance(types, list) and {"type", "version", "article", "description"} <= set(types[0])
    assert run_json(capsys, "webhooks", "list", "--json") == []
    queue = run_json(capsys, "webhooks", "status", "--json")
    assert isinstance(queue, dict) and queue["behind"] == queue["last"] - queue["position"]

    once = run_json(capsys, "scheduler", "--once", "--json")
    assert isinstance(once, dict) and once["leader"] is True and once["fired"] == 0 and once["complete"] is True

    assert run_json(capsys, "snapshots", "take", "--json") == {"available": False, "taken": 0, "contracts": 0}

    backup = tmp_path / "copy.sqlite"
    copied = run_json(capsys, "backup", str(backup), "--json")
    assert isinstance(copied, dict) and copied["backup"] == str(backup) and copied["bytes"] == backup.stat().st_size
    restored = run_json(capsys, "restore", str(backup), "--json")
    assert isinstance(restored, dict) and restored["pages"] == copied["pages"]


def test_keys_and_sweep_keep_their_json(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--role", "auditor", "--name", "scraper"]) == 0
    capsys.readouterr()
    listed = run_json(capsys, "keys", "list", "--json")
    assert isinstance(listed, list) and [k["name"] for k in listed] == ["scraper"]
