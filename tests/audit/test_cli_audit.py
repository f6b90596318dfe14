"""``contracts audit verify | export | replay | disclose`` on the embedded SQLite store."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest
from audit_kit import CHANGED, CUSTOMER, EVIDENCE, PERSON, erase_contractor_data, leaked, run_lifecycle, settle

from api.cli import main
from infrastructure.bootstrap import build_services
from infrastructure.settings import Settings


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "cli.sqlite"
    services = build_services(Settings(sqlite_path=path, database_url=None))
    try:
        run = run_lifecycle(services.app)
    finally:
        services.close()
    return path, str(run.contract_id)


def test_cli_verify_ok_then_names_the_edited_row(db: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, cid = db
    assert main(["audit", "verify", "--db", str(path)]) == 0
    assert "ok" in capsys.readouterr().out
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE stored_events SET state = replace(state, 'standard', 'premium') "
                     "WHERE originator_id = ? AND originator_version = 3", (cid.replace("-", ""),))
    assert main(["audit", "verify", "--db", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"broken: {cid} version 3" in out
    assert main(["audit", "verify", "--db", str(path), "--contract", cid, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    # the contract's version 3 is the fifth event stored: its customer account's Opened and
    # ContractRegistered (rule book 7) are stored with the contract's first two events
    assert report["first_broken"] == {"aggregate_id": cid, "version": 3, "reason": report["first_broken"]["reason"],
                                      "position": 5}


def test_cli_export_then_replay_offline(db: tuple[Path, str], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path, cid = db
    out = tmp_path / "history.jsonl"
    assert main(["audit", "export", "--db", str(path), "--contract", cid, "--out", str(out)]) == 0
    services = build_services(Settings(sqlite_path=path, database_url=None))
    try:
        contract = services.app.get_contract(uuid.UUID(cid))
        expected = {str(i.invoice_id): i.total for i in contract.ledger.invoices.values()}
    finally:
        services.close()
    path.unlink()  # replay needs the file only
    capsys.readouterr()
    assert main(["audit", "replay", str(out), "--as-of", "2026-11-01"]) == 0
    result = json.loads(capsys.readouterr().out)
    [c] = result["contracts"]
    assert {i["invoice_id"]: i["total"] for i in c["invoices"]} == expected
    assert c["contractor"] == CHANGED


def test_cli_disclose(db: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, cid = db
    assert main(["audit", "disclose", "--db", str(path), "--customer", CUSTOMER]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["contracts"][0]["current_contractor"] == CHANGED
    services = build_services(Settings(sqlite_path=path, database_url=None))
    try:
        erase_contractor_data(services.app, uuid.UUID(cid))
    finally:
        services.close()
    out = tmp_path / "disclosure.json"
    assert main(["audit", "disclose", "--db", str(path), "--contract", cid, "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["erased"] is True and doc["contracts"][0]["erased_on"] == "2034-06-01"
    assert leaked(out.read_bytes()) == []
    assert main(["audit", "disclose", "--db", str(path), "--customer", "NOBODY"]) == 2


def test_spec_13_cli_checkpoint_then_verify_detects_a_deleted_contract(
        db: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``contracts audit checkpoint-key``, ``checkpoint --out`` (the auditor's file), then the whole
    contract deleted from the database: ``verify --checkpoint FILE`` (with the public key alone)
    and ``verify`` (the store's latest) exit 1 naming it; without a key nothing can be signed."""
    path, cid = db
    assert main(["audit", "checkpoint", "--db", str(path)]) == 1
    assert "CONTRACTS_CHECKPOINT_KEY is not set" in capsys.readouterr().err
    assert main(["audit", "checkpoint-key"]) == 0
    keys = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    monkeypatch.setenv("CONTRACTS_CHECKPOINT_KEY", keys["CONTRACTS_CHECKPOINT_KEY"])
    exported = tmp_path / "checkpoint.json"
    assert main(["audit", "checkpoint", "--db", str(path), "--out", str(exported)]) == 0
    assert "checkpoint 1:" in capsys.readouterr().out
    assert json.loads(exported.read_text())["signature"]
    assert main(["audit", "verify", "--db", str(path)]) == 0
    assert "checkpoint 1 (position" in capsys.readouterr().out
    with sqlite3.connect(path) as conn:
        for table in ("stored_events", "event_hashes"):
            conn.execute(f"DELETE FROM {table} WHERE originator_id = ?", (cid.replace("-", ""),))
    assert main(["audit", "verify", "--db", str(path)]) == 1
    assert f"differs: deleted: aggregate {cid}" in capsys.readouterr().out
    monkeypatch.delenv("CONTRACTS_CHECKPOINT_KEY")  # an auditor: the public key only
    assert main(["audit", "verify", "--db", str(path), "--checkpoint", str(exported),
                 "--public-key", keys["CONTRACTS_CHECKPOINT_PUBLIC_KEY"], "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True  # the chain alone does not see it
    assert report["checkpoint"]["ok"] is False
    assert {"kind": "deleted", "aggregate_id": cid} in [
        {k: d[k] for k in ("kind", "aggregate_id")} for d in report["checkpoint"]["differences"]]
    assert main(["audit", "verify", "--db", str(path), "--checkpoint", str(exported)]) == 1
    assert "no trusted public key" in capsys.readouterr().out


def test_cli_privacy_policy_7_erasure_request(db: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The lifecycle ended 2026-08-31 with invoices to 2026-08 (fiscal year to 2027-03-31): the contacts
    go at once, the name and address are kept until 2034-05-31 (Corporate Tax Act: 7 years from the day
    after the filing deadline 2027-05-31) once settled."""
    path, cid = db
    services = build_services(Settings(sqlite_path=path, database_url=None))
    try:
        settle(services.app, uuid.UUID(cid))
    finally:
        services.close()
    assert main(["audit", "privacy-request", "--db", str(path), "--contract", cid, "--request", "erase",
                 "--operator", "alice"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["kept_fields"] == ["address", "name"] and answer["kept_until"] == "2034-05-31"
    assert set(answer["erased_fields"]) == {"contact_email", "contact_name", "contact_phone", "store_admin_email",
                                            "store_admin_name"}
    assert "Corporate Tax Act" in answer["kept_because"]
    assert main(["audit", "disclose", "--db", str(path), "--contract", cid]) == 0
    doc = json.loads(capsys.readouterr().out)
    [c] = doc["contracts"]
    assert c["current_contractor"] == {"name": CHANGED["name"], "address": CHANGED["address"],
                                       "contacts": "[erased]"}
    assert c["requests"][0]["actor"] == {"kind": "operator", "name": "alice", "role": "operator"}
    # claim evidence (free text, kept with the records key: it supports a booked credit) aside
    text = json.dumps(doc, ensure_ascii=False).replace(json.dumps(EVIDENCE, ensure_ascii=False), "")
    contacts = {v for person in (PERSON, CHANGED) for k, v in person.items() if k not in ("name", "address")}
    assert [v for v in contacts if v in text] == []  # erased in every event of the history, too
    assert CHANGED["name"] in text
