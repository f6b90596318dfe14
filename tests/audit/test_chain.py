"""Issue 6: every stored event carries a hash chained to the previous event of its aggregate
(over the stored, sealed bytes); verify recomputes it and names the first broken link."""

from __future__ import annotations

import uuid

import pytest
from audit_kit import PERSON, Store, erase_contractor_data, jst, run_lifecycle

from application.audit import GENESIS, chain_hash, verify_chain
from domain.errors import NotFound
from domain.invoice_numbers import InvoiceSequence


def _other_contract(store: Store) -> uuid.UUID:
    return store.app.open_contract("CUST-OTHER", "kintone", "standard", 10, PERSON, jst(2026, 3, 3),
                                   trial=True).aggregate_id


def test_chain_of_a_full_lifecycle_verifies(store: Store) -> None:
    run = run_lifecycle(store.app)
    report = verify_chain(store.app, run.contract_id)
    contract = store.app.get_contract(run.contract_id)
    assert report.ok and report.first_broken is None
    assert report.checked == contract.version and report.aggregates == 1
    whole = verify_chain(store.app)
    # the contract, its customer account (rule book 7), the outage, its log, the invoice number sequence
    assert whole.ok and whole.aggregates == 5
    # OutageRecorded; OutageLogOpened, OutageListed; the account's Opened, ContractRegistered; the sequence's
    sequence = store.app.repository.get(InvoiceSequence.create_id("T7123456789012", "2026"))
    assert whole.checked == contract.version + 1 + 2 + 2 + sequence.version


def test_chain_links_are_the_documented_hash(store: Store) -> None:
    run = run_lifecycle(store.app)
    rows = store.app.recorder.chain_rows(run.contract_id, None, 1000)  # type: ignore[attr-defined]
    prev = GENESIS
    for row in rows:
        prev = chain_hash(prev, row.originator_id, row.version, row.topic, row.state)
        assert row.hash == prev
    assert verify_chain(store.app, run.contract_id).head == prev.hex()


def test_shredding_keeps_the_chain_valid(store: Store) -> None:
    run = run_lifecycle(store.app)
    erase_contractor_data(store.app, run.contract_id)
    assert verify_chain(store.app).ok


def test_an_edited_event_row_is_named(store: Store) -> None:
    run = run_lifecycle(store.app)
    other = _other_contract(store)
    rows = {r.version: r for r in store.app.recorder.chain_rows(run.contract_id, None, 1000)}  # type: ignore[attr-defined]
    target = next(v for v, r in rows.items() if r.topic.endswith("PaymentReceived"))
    edited = rows[target].state.replace(b'"amount":24200', b'"amount":2420')
    assert edited != rows[target].state
    store.execute(f"UPDATE {store.events_table} SET state = %s WHERE originator_id = %s AND originator_version = %s",
                  (edited, run.contract_id, target))
    report = verify_chain(store.app, run.contract_id)
    assert not report.ok
    assert report.first_broken is not None
    assert (report.first_broken.aggregate_id, report.first_broken.version) == (run.contract_id, target)
    assert "does not match" in report.first_broken.reason
    whole = verify_chain(store.app)
    assert [(b.aggregate_id, b.version) for b in whole.broken] == [(run.contract_id, target)]
    assert verify_chain(store.app, other).ok


def test_every_edited_row_is_named_and_counted(store: Store) -> None:
    run = run_lifecycle(store.app)
    for version in (3, 7):
        store.execute(f"UPDATE {store.hashes_table} SET hash = %s WHERE originator_id = %s "
                      "AND originator_version = %s", (bytes(32), run.contract_id, version))
    report = verify_chain(store.app, run.contract_id)
    assert [b.version for b in report.broken] == [3, 7]
    assert report.checked == store.app.get_contract(run.contract_id).version


def test_an_edited_hash_row_is_named(store: Store) -> None:
    run = run_lifecycle(store.app)
    store.execute(f"UPDATE {store.hashes_table} SET hash = %s WHERE originator_id = %s AND originator_version = %s",
                  (bytes(32), run.contract_id, 5))
    report = verify_chain(store.app, run.contract_id)
    assert report.first_broken is not None and report.first_broken.version == 5


def test_a_deleted_event_is_named(store: Store) -> None:
    run = run_lifecycle(store.app)
    store.execute(f"DELETE FROM {store.events_table} WHERE originator_id = %s AND originator_version = %s",
                  (run.contract_id, 4))
    report = verify_chain(store.app, run.contract_id)
    assert report.first_broken is not None
    assert report.first_broken.version == 4 and "missing" in report.first_broken.reason


def test_a_deleted_last_event_shows_as_an_orphan_hash_or_a_changed_head(store: Store) -> None:
    run = run_lifecycle(store.app)
    head = verify_chain(store.app, run.contract_id).head
    last = store.app.get_contract(run.contract_id).version
    store.execute(f"DELETE FROM {store.events_table} WHERE originator_id = %s AND originator_version = %s",
                  (run.contract_id, last))
    report = verify_chain(store.app, run.contract_id)
    assert report.first_broken is not None and report.first_broken.version == last
    assert "deleted" in report.first_broken.reason
    store.execute(f"DELETE FROM {store.hashes_table} WHERE originator_id = %s AND originator_version = %s",
                  (run.contract_id, last))
    truncated = verify_chain(store.app, run.contract_id)
    assert truncated.ok and truncated.head != head  # only a recorded head reveals a cut tail


def test_writing_after_a_removed_hash_fails_loudly(store: Store) -> None:
    run = run_lifecycle(store.app)
    last = store.app.get_contract(run.contract_id).version
    store.execute(f"DELETE FROM {store.hashes_table} WHERE originator_id = %s AND originator_version = %s",
                  (run.contract_id, last))
    fresh = store.reopen()  # no chain heads cached
    try:
        with pytest.raises(Exception, match="no hash recorded"):
            erase_contractor_data(fresh.app, run.contract_id)
    finally:
        fresh.close()


def test_verify_unknown_contract(store: Store) -> None:
    with pytest.raises(NotFound):
        verify_chain(store.app, uuid.uuid4())
