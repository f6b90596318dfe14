"""A contract's notices read with its stored version (issue 21: what a GET of a contract checks its
kept view against, and adds to it, in one statement on PostgreSQL; two reads on SQLite). Deliveries
change without the contract's version, so every read sees their current status."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from app_kit import CONTRACTOR, customer, jst
from eventsourcing.sqlite import SQLiteFactory
from receivers import always
from webhook_kit import Hub

from domain.contract import BillingCycle


def test_notices_are_read_with_the_stored_version_and_their_delivery_status_is_current(hub: Hub, receiver) -> None:
    r = receiver(always(200))
    endpoint, _ = hub.register(r.url)
    opened = hub.app.open_contract(customer(), "kintone", "standard", 10, CONTRACTOR, jst(2026, 3, 24),
                                   cycle=BillingCycle.MONTHLY)
    cid = opened.aggregate_id
    approved = hub.app.approve(cid, jst(2026, 3, 24))
    assert approved.version == opened.version + 1  # one Approved event
    contract = hub.app.get_contract(cid)
    hooks = hub.parts.webhooks
    assert hooks.notices_at_version(cid, contract.service, contract.created_on) == (approved.version, [])

    # Art. 18: a service-wide notice (no contract id), recorded after the contract opened: queued, not yet sent
    hub.app.announce_discontinuation("kintone", date(2026, 9, 3), datetime(2026, 6, 3, 1, tzinfo=UTC))
    hooks.deriver.catch_up()
    version, notices = hooks.notices_at_version(cid, "kintone", contract.created_on)
    assert version == approved.version  # the announcement is not an event of the contract
    assert [(n["article"], n["type"], n["status"], n["delivered"], n["attempts"]) for n in notices] == [
        ("Art. 18", "service.discontinuation_announced", "pending", False, 0)]

    while hub.parts.deliverer.deliver_due(50):  # delivered: the contract's version stays, its notice changes
        pass
    version, notices = hooks.notices_at_version(cid, "kintone", contract.created_on)
    assert version == approved.version
    assert [(n["type"], n["status"], n["delivered"], n["attempts"], n["endpoint_id"]) for n in notices] == [
        ("service.discontinuation_announced", "delivered", True, 1, str(endpoint.endpoint_id))]
    assert notices == hooks.notices(contract)  # the same as the notices read on their own

    # another service's contract is not told of kintone's discontinuation
    other = hub.app.open_contract("CUST-OTHER", "garoon", "standard", 10, {"name": "X"}, jst(2026, 3, 24),
                                  cycle=None, trial=True)
    other_contract = hub.app.get_contract(other.aggregate_id)
    assert hooks.notices_at_version(other.aggregate_id, "garoon", other_contract.created_on) == (other.version, [])
    # no such contract: no version (a GET answers 404 on it; the service-wide notices do not depend on a contract)
    assert hooks.notices_at_version(uuid.uuid4(), "kintone", contract.created_on)[0] is None


def test_postgresql_reads_the_version_and_the_notices_in_one_statement(hub: Hub) -> None:
    cid = hub.app.open_contract(customer(), "kintone", "standard", 10, CONTRACTOR, jst(2026, 3, 24),
                                cycle=BillingCycle.MONTHLY).aggregate_id
    contract = hub.app.get_contract(cid)
    found = hub.store.notices_at_version(cid, "kintone", contract.created_on, ["service.discontinuation_announced"])
    if isinstance(hub.app.factory, SQLiteFactory):
        assert found is None  # the caller reads the version from the event store, then the notices
    else:
        assert found == (contract.version, [])
