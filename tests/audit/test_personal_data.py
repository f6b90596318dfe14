"""Spec 10 / Art. 13: personal data is stored encrypted with keys per contract (records and
contacts); ContractorDataErased destroys them, a privacy-policy-7 request the contacts key; the
events still replay with amounts and dates intact."""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from audit_kit import (
    CHANGED,
    CUSTOMER,
    EVIDENCE,
    PERSON,
    Store,
    erase_contractor_data,
    jst,
    leaked,
    run_lifecycle,
    settle,
)

from application.audit import PERSONAL_FIELDS, export_records, key_id
from application.service import ContractsApplication
from application.undecodable import UndecodableEvent
from domain.errors import RuleViolation
from domain.personal_data import ERASED
from infrastructure.bootstrap import SQLITE_MODULE, build_services
from infrastructure.personal_data import ContractKeyError, parse_master_key
from infrastructure.settings import Settings


def _figures(app: ContractsApplication, cid: uuid.UUID) -> dict[str, Any]:
    """Everything but personal data: every event's other attributes, and the invoices."""
    events = []
    for record in export_records(app, cid):
        payload = {k: v for k, v in record["payload"].items() if k not in record["sealed"]}
        events.append((record["version"], record["event"], json.dumps(payload, sort_keys=True)))
    invoices = [i.to_dict() for i in app.get_contract(cid).ledger.invoices.values()]
    return {"events": events, "invoices": invoices}


def test_spec10_no_plaintext_personal_data_in_the_store(store: Store) -> None:
    run = run_lifecycle(store.app)
    raw = store.raw_bytes()
    assert CUSTOMER.encode() in raw, "the grep must see the stored data (customer number is stored in clear)"
    assert b"premium" in raw
    assert leaked(raw) == []
    contract = store.app.get_contract(run.contract_id)
    assert contract.contractor == CHANGED  # decrypted on read
    assert store.app.get_contract(run.contract_id, version=2).contractor == PERSON


def test_spec10_contractor_data_erased_destroys_the_keys_and_keeps_every_figure(store: Store) -> None:
    run = run_lifecycle(store.app)
    cid = run.contract_id
    settle(store.app, cid)
    before = _figures(store.app, cid)
    erase_contractor_data(store.app, cid)
    after_here = _figures(store.app, cid)
    fresh = store.reopen()  # another process: nothing cached
    try:
        after_fresh = _figures(fresh.app, cid)
        # amounts, dates and the invoices are unchanged; only ContractorDataErased was added
        assert after_here["events"][:-1] == before["events"]
        assert after_here["events"][-1][1] == "ContractorDataErased"
        assert after_here["invoices"] == before["invoices"] == after_fresh["invoices"]
        assert after_fresh == after_here
        # personal fields read as erased, in every historical version and in every process
        for app in (store.app, fresh.app):
            assert app.get_contract(cid).contractor == {}
            assert app.get_contract(cid, version=2).contractor == ERASED["contractor"]
            events = app.contract_events(cid)
            sealed = [e for e in events if f"{type(e).__module__}:{type(e).__qualname__}" in PERSONAL_FIELDS]
            assert {type(e).__name__ for e in sealed} == {"TrialStarted", "Applied", "ContractorInfoChanged",
                                                          "SlaBreachClaimed", "PaymentReceived", "InvoiceIssued"}
            for e in sealed:
                assert getattr(e, "contractor", ERASED["contractor"]) == ERASED["contractor"]
                assert getattr(e, "evidence", ERASED["evidence"]) == ERASED["evidence"]
                assert getattr(e, "recipient", ERASED["recipient"]) == ERASED["recipient"]
        assert leaked(store.raw_bytes()) == []
    finally:
        fresh.close()


def test_spec10_destroyed_key_is_gone_from_the_key_table(store: Store) -> None:
    run = run_lifecycle(store.app)
    keys = store.app.factory.keys  # type: ignore[attr-defined]
    key = keys.key_for_reading(run.contract_id)
    assert key is not None and key in store.raw_bytes()  # no master key: the data key is stored as is
    erase_contractor_data(store.app, run.contract_id)
    assert keys.key_for_reading(run.contract_id) is None
    for kid in (run.contract_id, key_id(run.contract_id, "contacts")):  # the records and the contacts key
        found, row = keys._read(kid)
        assert found and row["key"] is None and row["destroyed_at"] is not None
    if store.backend == "sqlite":  # secure_delete + WAL checkpoint: the bytes are gone from the files too
        assert key not in store.raw_bytes()
    # no new personal data can be stored under a destroyed key
    with pytest.raises(ContractKeyError):
        keys.key_for_writing(run.contract_id)


def test_spec10_no_personal_data_can_be_added_after_deletion(store: Store) -> None:
    run = run_lifecycle(store.app)
    erase_contractor_data(store.app, run.contract_id)
    with pytest.raises(RuleViolation):
        store.app.change_contractor(run.contract_id, PERSON, jst(2026, 11, 1))
    with pytest.raises(RuleViolation):
        store.app.claim_sla(run.contract_id, run.outage_id, jst(2026, 11, 1), True, True, EVIDENCE + " again")


def test_spec10_ciphertext_is_bound_to_its_event(store: Store) -> None:
    """Swapping sealed fields between events (or contracts) does not decrypt: AES-GCM with the
    aggregate, version and field as associated data."""
    run = run_lifecycle(store.app)
    rows = {r.version: r for r in store.app.recorder.chain_rows(run.contract_id, None, 100)}  # type: ignore[attr-defined]
    trial, applied = rows[2], rows[3]
    assert "TrialStarted" in trial.topic and "Applied" in applied.topic
    store.execute(f"UPDATE {store.events_table} SET state = %s WHERE originator_id = %s AND originator_version = %s",
                  (applied.state, run.contract_id, 2))
    fresh = store.reopen()
    try:
        with pytest.raises(UndecodableEvent) as info:
            fresh.app.get_contract(run.contract_id)
        assert leaked(str(info.value).encode()) == []
    finally:
        fresh.close()


def test_spec10_evidence_is_sealed_and_readable_until_deletion(store: Store) -> None:
    run = run_lifecycle(store.app)
    claimed = [e for e in store.app.contract_events(run.contract_id) if type(e).__name__ == "SlaBreachClaimed"]
    assert [e.evidence for e in claimed] == [EVIDENCE]


def test_spec10_master_key_wraps_the_contract_keys(tmp_path: Path) -> None:
    """With CONTRACTS_MASTER_KEY the key table holds only wrapped keys (backend-neutral code:
    exercised on SQLite, where the whole file can be read)."""
    master = base64.b64encode(os.urandom(32)).decode()
    path = tmp_path / "wrapped.sqlite"
    env = {"PERSISTENCE_MODULE": SQLITE_MODULE, "SQLITE_DBNAME": str(path), "CONTRACTS_MASTER_KEY": master}
    settings = Settings(sqlite_path=path, database_url=None)

    def raw() -> bytes:
        return b"".join(p.read_bytes() for p in tmp_path.glob("wrapped.sqlite*"))

    services = build_services(settings, env)
    try:
        run = run_lifecycle(services.app)
        data_key = services.app.factory.keys.key_for_reading(run.contract_id)  # type: ignore[attr-defined]
        assert data_key is not None and data_key not in raw()
        master_key = parse_master_key(master)
        assert master_key is not None and master_key not in raw()
        assert services.app.get_contract(run.contract_id).contractor == CHANGED
        assert leaked(raw()) == []
    finally:
        services.close()
    # without (or with another) master key the data key cannot be unwrapped: a loud error, not "erased"
    other = {**env, "CONTRACTS_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    for env_ in (other, {k: v for k, v in env.items() if k != "CONTRACTS_MASTER_KEY"}):
        services = build_services(settings, env_)
        try:
            with pytest.raises(ContractKeyError):
                services.app.get_contract(run.contract_id)
        finally:
            services.close()


def test_master_key_setting_is_validated() -> None:
    assert parse_master_key(None) is None
    assert parse_master_key("") is None
    with pytest.raises(ValueError):
        parse_master_key("c2hvcnQ=")
    with pytest.raises(ValueError):
        parse_master_key("not base64 at all!")
