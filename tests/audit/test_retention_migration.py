"""Stores written before issue 15 (one key per contract, ``DataDeleted``) read as the new facts,
without rewriting an event (docs/decisions.md: "Retention: reading older stores")."""

from __future__ import annotations

from datetime import date

import pytest
from audit_kit import PERSON, Store, jst, leaked, settle

import infrastructure.personal_data as personal_data
from application.audit import verify_chain
from domain.calendar import Month
from domain.contract import BillingCycle
from domain.personal_data import ERASED


def _ended_contract(store: Store) -> object:
    app = store.app
    cid = app.open_contract("CUST-OLD-1", "kintone", "standard", 10, PERSON, jst(2026, 3, 2),
                            cycle=BillingCycle.MONTHLY).aggregate_id
    app.approve(cid, jst(2026, 3, 24))
    app.advance(cid, Month(2026, 4))
    app.terminate_for_cause(cid, "Art. 23.1.1", jst(2026, 4, 10))
    return cid


def test_an_old_data_deleted_reads_as_stored_data_deleted_and_contractor_data_erased(store: Store) -> None:
    """The old event (Art. 15.3 as it was read before) stays erased: both facts, both keys gone."""
    app = store.app
    cid = _ended_contract(store)
    contract = app.get_contract(cid)
    contract._data_deleted(deleted_on=date(2026, 6, 9))  # what the earlier version stored on its deadline
    app.save(contract)
    fresh = store.reopen()
    try:
        c = fresh.app.get_contract(cid)
        assert c.data_deleted and c.contractor == {}
        assert c.contractor_erased_on == c.stored_data_deleted_on == date(2026, 6, 9)
        assert fresh.app.get_contract(cid, version=2).contractor == ERASED["contractor"]
        assert [i.total for i in c.ledger.invoices.values()] == [24200]  # the April invoice replays
    finally:
        fresh.close()
    assert leaked(store.raw_bytes()) == []
    assert verify_chain(app).ok


def test_contacts_in_an_event_older_than_the_split_are_dropped_after_an_erasure_request(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Privacy policy 7 on a store written with one key: the old events hold the whole contractor
    under the records key; once the contacts key is destroyed, their contact fields read as erased."""
    with monkeypatch.context() as old_version:
        old_version.setattr(personal_data, "SPLIT_FIELDS", frozenset())  # the mapper before the split
        cid = _ended_contract(store)
    settle(store.app, cid)
    _, answer = store.app.answer_privacy_request(cid, "erase", jst(2026, 5, 1))
    assert answer["kept_fields"] == ["address", "name"] and answer["kept_until"] == date(2034, 5, 31)
    fresh = store.reopen()
    try:
        applied = fresh.app.get_contract(cid, version=2).contractor
        assert applied == {"name": PERSON["name"], "address": PERSON["address"], "contacts": "[erased]"}
        assert fresh.app.get_contract(cid).contractor == applied
    finally:
        fresh.close()
