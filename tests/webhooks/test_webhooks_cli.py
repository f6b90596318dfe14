"""``contracts webhooks ...`` and ``contracts announce ...`` (spec 12, Art. 18, 28), in process."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from api.cli import main


def test_spec12_webhooks_cli_prints_the_secret_once_and_manages_the_endpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CONTRACTS_SQLITE_PATH", str(tmp_path / "c.sqlite"))
    monkeypatch.delenv("CONTRACTS_DATABASE_URL", raising=False)
    assert main(["webhooks", "add", "--url", "http://127.0.0.1:9/hook", "--types",
                 "contract.suspension_noticed,terms.change_announced"]) == 0
    out = capsys.readouterr().out
    secret = out.strip().splitlines()[-1]
    endpoint = json.loads(out[:out.rindex("}") + 1])
    assert secret.startswith("whsec_") and endpoint["event_types"] == ["contract.suspension_noticed",
                                                                        "terms.change_announced"]
    eid = endpoint["endpoint_id"]
    assert main(["webhooks", "list"]) == 0
    listed = capsys.readouterr().out
    assert eid in listed and secret not in listed
    assert main(["webhooks", "disable", eid, "--reason", "receiver moves"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "disabled"
    assert main(["webhooks", "enable", eid]) == 0
    capsys.readouterr()
    assert main(["webhooks", "roll-secret", eid, "--overlap-hours", "2"]) == 0
    rolled = capsys.readouterr().out.strip()
    assert rolled.startswith("whsec_") and rolled != secret
    assert main(["announce", "terms-change", "--version", "2099-01", "--effective-on", "2099-01-01",
                 "--summary", "a new clause"]) == 0
    assert "announced" in capsys.readouterr().out
    assert main(["webhooks", "status"]) == 0
    assert "behind" in capsys.readouterr().out
    assert main(["webhooks", "show", eid]) == 0
    actions = [e["action"] for e in json.loads(capsys.readouterr().out)["log"]]
    assert actions == ["registered", "disabled", "enabled", "secret rolled"]
    assert main(["webhooks", "add", "--url", "ftp://x", "--types", "*"]) == 2  # refused, named, no trace
    assert "url" in capsys.readouterr().err
    assert main(["webhooks", "delete", eid]) == 0
    assert secret not in caplog.text and rolled not in caplog.text
