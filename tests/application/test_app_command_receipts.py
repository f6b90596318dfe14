"""Exactly-once commands across crashes (issue 4/8): a command run under a receipt key saves a
CommandReceipt in the same transaction as its events; running it again under the same key
stores nothing, and the receipt tells what was applied. Same test on POPO, SQLite, PostgreSQL."""

from __future__ import annotations

from app_kit import CONTRACTOR, customer, jst, stored

from application.command_receipts import receipt_scope
from application.service import ContractsApplication
from domain.contract import BillingCycle
from domain.errors import ConcurrencyConflict


def test_spec_3_a_command_under_one_receipt_key_is_stored_once(app: ContractsApplication) -> None:
    opened = app.open_contract(customer(), "kintone", "standard", 10, CONTRACTOR, jst(2026, 4, 1),
                               cycle=BillingCycle.MONTHLY)
    cid = opened.aggregate_id
    assert app.find_receipt("k-1") is None
    with receipt_scope("k-1"):
        first = app.change_contractor(cid, {"name": "Renamed K.K."}, jst(2026, 4, 2))
    assert (first.version, first.events) == (3, 1)  # Opened, Applied, ContractorInfoChanged (receipt not counted)
    before = stored(app, cid)
    try:
        with receipt_scope("k-1"):
            app.change_contractor(cid, {"name": "Renamed K.K."}, jst(2026, 4, 2))
        raise AssertionError("the second run must be refused")
    except ConcurrencyConflict:
        pass
    assert stored(app, cid) == before  # nothing stored twice, not even the contract's event
    applied = app.find_receipt("k-1")
    assert applied is not None and (applied.aggregate_id, applied.version) == (cid, 3)
    with receipt_scope("k-2"):  # another key is another command
        assert app.change_contractor(cid, {"name": "Again K.K."}, jst(2026, 4, 3)).version == 4
