"""Spec 10: the payer's reference on a payment (on Japanese bank transfers often the remitter's
name) is personal data: stored sealed with the contract's key, redacted in a redacted export,
read as erased once the contractor's data is erased (issue 14 item 8). SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import pytest
from audit_kit import CUSTOMER, PERSON, Store, erase_contractor_data, jst, run_lifecycle

from application.audit import export_records
from domain.errors import RuleViolation
from domain.personal_data import ERASED, REDACTED

REMITTER = "ﾌﾘｺﾐ ﾀﾛｳ ｵｰﾃﾞｨｯﾄ\nINJECTED-LINE"


def _pay_with_reference(store: Store) -> tuple[object, int]:
    run = run_lifecycle(store.app)
    contract = store.app.get_contract(run.contract_id)
    unpaid = next(i for i in contract.ledger.invoices.values() if i.outstanding > 0)
    result = store.app.record_payment(run.contract_id, unpaid.invoice_id, 1, date(2026, 9, 1), jst(2026, 9, 1),
                                      reference=REMITTER)
    return run.contract_id, result.version


def test_spec10_the_payer_reference_is_sealed_and_reads_back(store: Store) -> None:
    cid, version = _pay_with_reference(store)
    assert REMITTER.encode() not in store.raw_bytes() and "ｵｰﾃﾞｨｯﾄ".encode() not in store.raw_bytes()
    (payment,) = [e for e in store.app.contract_events(cid) if e.originator_version == version]
    assert payment.reference == REMITTER
    assert REMITTER in store.app.get_contract(cid).payment_references  # a retried payment is still refused
    record = next(r for r in export_records(store.app, cid) if r["version"] == version)
    assert record["sealed"] == ["reference"] and record["payload"]["reference"] == REMITTER
    redacted = next(r for r in export_records(store.app, cid, redact=True) if r["version"] == version)
    assert redacted["payload"]["reference"] == REDACTED["reference"]
    assert REMITTER not in json.dumps(redacted, ensure_ascii=False)


def test_spec10_the_payer_reference_reads_as_erased_after_erasure(store: Store) -> None:
    cid, version = _pay_with_reference(store)
    erase_contractor_data(store.app, cid)  # the contract's keys are destroyed (spec 10)
    fresh = store.reopen()
    try:
        for app in (store.app, fresh.app):
            (payment,) = [e for e in app.contract_events(cid) if e.originator_version == version]
            assert payment.reference == ERASED["reference"]
            assert payment.amount == 1  # the figures stay
    finally:
        fresh.close()


def test_spec10_a_reference_stored_in_clear_before_sealing_reads_as_erased_after_erasure(store: Store) -> None:
    """A store written before the reference was personal data holds it in clear: events never
    change, but once the key is destroyed it reads as erased like the sealed fields."""
    cid, version = _pay_with_reference(store)
    # the PaymentReceived as the previous version stored it: the reference in clear
    table = store.events_table
    rows = [r for r in store.app.recorder.chain_rows(cid, None, 1000) if r.version == version]  # type: ignore[attr-defined]
    state = json.loads(rows[0].state)
    state["reference"] = "LEGACY REMITTER"
    store.execute(f"UPDATE {table} SET state = %s WHERE originator_id = %s AND originator_version = %s",
                  (json.dumps(state).encode(), cid, version))
    fresh = store.reopen()
    try:
        (payment,) = [e for e in fresh.app.contract_events(cid) if e.originator_version == version]
        assert payment.reference == "LEGACY REMITTER"
        erase_contractor_data(fresh.app, cid)
        (payment,) = [e for e in fresh.app.contract_events(cid) if e.originator_version == version]
        assert payment.reference == ERASED["reference"]
    finally:
        fresh.close()


PAYER = "ｶ)ｵｰﾃﾞｨｯﾄｼｮｳｼﾞ"


def test_spec10_a_transfers_payer_name_goes_with_the_customers_last_contractor_data(store: Store) -> None:
    """Rule book 10: a transfer's payer name and bank reference are the customer's personal data.
    The customer has two contracts: the lifecycle's (erased 2034-06-01, see ``erase_contractor_data``)
    and a garoon trial started 2026-03-02 (30 days: expired 2026-04-01; no invoice, so its contractor
    data goes at the stored-data deadline 2026-04-01 + 60 days = 2026-05-31). The 1,000 yen transfer
    of 2026-09-01 keeps its payer until the second erasure, then reads as erased; its figures stay."""
    app = store.app
    run = run_lifecycle(app)
    trial = app.open_contract(CUSTOMER, "garoon", "standard", 10, PERSON, jst(2026, 3, 2), trial=True).aggregate_id
    app.expire_trial(trial, date(2026, 4, 1))
    app.delete_stored_data(trial, date(2026, 5, 31))
    outcome = app.receive_transfer(CUSTOMER, PAYER, "BANK-REF-AUDIT-1", 1_000, date(2026, 9, 1), jst(2026, 9, 1))
    tid = outcome.transfer.id
    assert [a.amount for a in outcome.transfer.allocations] == [1_000]
    assert PAYER.encode() not in store.raw_bytes()  # sealed with the transfer's key

    erase_contractor_data(app, run.contract_id)
    assert app.get_transfer(tid).payer_name == PAYER  # the trial contract still keeps its contractor data
    app.erase_contractor_data(trial, date(2026, 9, 2))
    fresh = store.reopen()
    try:
        for reader in (app, fresh.app):
            transfer = reader.get_transfer(tid)
            assert (transfer.payer_name, transfer.bank_reference) == (ERASED["payer_name"], ERASED["bank_reference"])
            assert (transfer.amount, transfer.value_date, transfer.payer_erased_on) == (
                1_000, date(2026, 9, 1), date(2026, 9, 2))
            assert [a.amount for a in transfer.allocations] == [1_000]
            received, *_, erased = list(reader.events.get(tid))
            assert received.payer_name == ERASED["payer_name"] and type(erased).__name__ == "PayerDataErased"
    finally:
        fresh.close()
    with pytest.raises(RuleViolation) as refused:
        app.get_transfer(tid).erase_payer_data(date(2026, 9, 3), "again")
    assert refused.value.article == "rule book 10"
