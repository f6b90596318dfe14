"""Exactly-once commands across crashes (issue 4/8): a command run under a receipt key saves a
CommandReceipt in the same transaction as its events; running it again under the same key
stores nothing, and the receipt tells what was applied and for which request (its fingerprint,
issue 14 item 2). Same test on POPO, SQLite, PostgreSQL."""

from __future__ import annotations

import json
import uuid

from app_kit import CONTRACTOR, customer, jst, stored
from eventsourcing.persistence import StoredEvent

from application.command_receipts import CommandReceipt, receipt_id, receipt_scope
from application.service import ContractsApplication
from domain.contract import BillingCycle
from domain.errors import ConcurrencyConflict


def test_spec_3_a_command_under_one_receipt_key_is_stored_once(app: ContractsApplication) -> None:
    opened = app.open_contract(customer(), "kintone", "standard", 10, CONTRACTOR, jst(2026, 4, 1),
                               cycle=BillingCycle.MONTHLY)
    cid = opened.aggregate_id
    assert app.find_receipt("k-1") is None
    with receipt_scope("k-1", "fingerprint-a"):
        first = app.change_contractor(cid, {"name": "Renamed K.K."}, jst(2026, 4, 2))
    assert (first.version, first.events) == (3, 1)  # Opened, Applied, ContractorInfoChanged (receipt not counted)
    before = stored(app, cid)
    try:
        with receipt_scope("k-1", "fingerprint-a"):
            app.change_contractor(cid, {"name": "Renamed K.K."}, jst(2026, 4, 2))
        raise AssertionError("the second run must be refused")
    except ConcurrencyConflict:
        pass
    assert stored(app, cid) == before  # nothing stored twice, not even the contract's event
    applied = app.find_receipt("k-1")
    assert applied is not None and (applied.aggregate_id, applied.applied_version) == (cid, 3)
    with receipt_scope("k-2", "fingerprint-b"):  # another key is another command
        assert app.change_contractor(cid, {"name": "Again K.K."}, jst(2026, 4, 3)).version == 4


def test_spec_3_a_receipt_remembers_the_fingerprint_of_the_request_it_applied(app: ContractsApplication) -> None:
    """Issue 14 item 2: the receipt outlives the API's 24 h key record, so it must tell the
    request that applied it from another request reusing the key."""
    opened = app.open_contract(customer(), "kintone", "standard", 10, CONTRACTOR, jst(2026, 4, 1),
                               cycle=BillingCycle.MONTHLY)
    with receipt_scope("k-fp", "sha-of-request-a"):
        app.change_contractor(opened.aggregate_id, {"name": "Renamed K.K."}, jst(2026, 4, 2))
    receipt = app.find_receipt("k-fp")
    assert receipt is not None and receipt.request_hash == "sha-of-request-a"
    assert receipt.same_request("sha-of-request-a")
    assert not receipt.same_request("sha-of-request-b")
    assert not receipt.same_request("")


def test_spec_3_a_receipt_stored_before_fingerprints_matches_no_request(app: ContractsApplication) -> None:
    """A ``CommandApplied`` event in the shape stored before the fingerprint existed still reads,
    with an empty fingerprint that no request matches (so it is never taken as "done")."""
    rid = receipt_id("legacy-key")
    target = uuid.uuid4()
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-04-01T00:00:00+00:00"},
             "originator_topic": f"{CommandReceipt.__module__}:{CommandReceipt.__qualname__}",
             "key_digest": "0" * 64, "aggregate_id": {"_type_": "uuid_hex", "_data_": target.hex},
             "applied_version": 2}
    app.recorder.insert_events([StoredEvent(
        originator_id=rid, originator_version=1,
        topic=f"{CommandReceipt.__module__}:{CommandReceipt.__qualname__}.CommandApplied",
        state=json.dumps(state).encode())])
    receipt = app.find_receipt("legacy-key")
    assert receipt is not None and (receipt.aggregate_id, receipt.applied_version) == (target, 2)
    assert receipt.request_hash == "" and not receipt.same_request("")
