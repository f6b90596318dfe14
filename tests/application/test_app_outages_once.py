"""Spec 8 (Art. 20): one outage is recorded once per service, also when it is sent with another
UTC offset, and also when two writers (two applications over one store: two processes) record it
at the same moment (issue 14 item 3). Same tests on POPO, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from app_kit import assert_refused, jst, monthly_to_june
from eventsourcing.application import AggregateNotFoundError

from application.service import ContractsApplication
from domain.errors import DomainError, RuleViolation
from domain.service_events import Outage, OutageLog
from domain.sla import OutageCause

JST = timezone(timedelta(hours=9))
NET = OutageCause.PROVIDER_NETWORK


def test_spec_8_the_same_outage_sent_with_plus_nine_and_with_z_is_refused_the_second_time(
        app: ContractsApplication) -> None:
    first = app.record_outage("kintone", datetime(2026, 6, 10, 9, 0, tzinfo=JST),
                              datetime(2026, 6, 12, 11, 0, tzinfo=JST), NET, jst(2026, 6, 13))
    refused = assert_refused(app, None, lambda: app.record_outage(
        "kintone", datetime(2026, 6, 10, 0, 0, tzinfo=UTC), datetime(2026, 6, 12, 2, 0, tzinfo=UTC), NET,
        jst(2026, 6, 13)), RuleViolation, "Art. 20")
    assert refused.refers_to == {"existing_outage_id": str(first.aggregate_id)}
    # overlapping by one hour, another cause: still the same outage
    assert_refused(app, None, lambda: app.record_outage(
        "kintone", jst(2026, 6, 12, 10), jst(2026, 6, 12, 20), OutageCause.SCHEDULED_MAINTENANCE,
        jst(2026, 6, 13)), RuleViolation, "Art. 20")
    # the next one, starting when the first ended, and the same hours of another service are recorded
    app.record_outage("kintone", jst(2026, 6, 12, 11), jst(2026, 6, 12, 20), NET, jst(2026, 6, 13))
    app.record_outage("garoon", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), NET, jst(2026, 6, 13))


def test_spec_8_one_outage_credits_once(app: ContractsApplication) -> None:
    """The attack of issue 14: the outage recorded twice, each claimable. Now the second is
    refused, and the contract's one claim gets 2 credit days (50 h: floor(50 / 24) = 2)."""
    cid = monthly_to_june(app)
    first = app.record_outage("kintone", datetime(2026, 6, 10, 9, 0, tzinfo=JST),
                              datetime(2026, 6, 12, 11, 0, tzinfo=JST), NET, jst(2026, 6, 13))
    try:
        app.record_outage("kintone", datetime(2026, 6, 10, 0, 0, tzinfo=UTC),
                          datetime(2026, 6, 12, 2, 0, tzinfo=UTC), NET, jst(2026, 6, 13))
        raise AssertionError("the same outage must not be recorded twice")
    except RuleViolation as refused:
        assert refused.refers_to["existing_outage_id"] == str(first.aggregate_id)
    _, assessment = app.claim_sla(cid, first.aggregate_id, jst(2026, 6, 20), True, True)
    assert assessment.eligible and assessment.credit_days == 2
    assert len(app.get_contract(cid).claims) == 1


def test_spec_8_outages_stored_before_the_log_existed_are_still_checked(app: ContractsApplication) -> None:
    """A store written by the previous version has outages and no log: the log is opened with them."""
    legacy = Outage.record("kintone", datetime(2026, 6, 10, 9, 0, tzinfo=JST),
                           datetime(2026, 6, 12, 11, 0, tzinfo=JST), NET, jst(2026, 6, 13))
    app.save(legacy)  # as the previous version stored it: no OutageLog
    refused = assert_refused(app, None, lambda: app.record_outage(
        "kintone", datetime(2026, 6, 10, 0, 30, tzinfo=UTC), datetime(2026, 6, 11, 2, 0, tzinfo=UTC), NET,
        jst(2026, 6, 13)), RuleViolation, "Art. 20")
    assert refused.refers_to == {"existing_outage_id": str(legacy.id)}
    with pytest.raises(AggregateNotFoundError):  # the refusal stored nothing, not even the new log
        app.repository.get(OutageLog.create_id("kintone"))
    later = app.record_outage("kintone", jst(2026, 6, 20), jst(2026, 6, 21), NET, jst(2026, 6, 22))
    log = app.repository.get(OutageLog.create_id("kintone"))
    assert [o.outage_id for o in log.outages] == [legacy.id, later.aggregate_id]


def test_spec_8_two_writers_recording_one_outage_at_once_store_it_once(
        app: ContractsApplication, reopen: Callable[[], ContractsApplication | None]) -> None:
    """Two applications over one store (as two processes), each sending the same outage (one
    with +09:00, one with Z) or overlapping ones at the same moment, 8 rounds: exactly one is
    recorded per round, the other refused naming it."""
    other = reopen() or app  # POPO: two threads of one application
    rounds = 8
    for n in range(rounds):
        start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC) + timedelta(days=3 * n)
        barrier = threading.Barrier(2)
        results: list[uuid.UUID | DomainError] = []

        def record(a: ContractsApplication, began: datetime, hours: int, barrier: threading.Barrier = barrier,
                   results: list[uuid.UUID | DomainError] = results) -> None:
            barrier.wait()
            try:
                results.append(a.record_outage("kintone", began, began + timedelta(hours=hours), NET,
                                               jst(2026, 7, 30)).aggregate_id)
            except DomainError as exc:
                results.append(exc)

        threads = [threading.Thread(target=record, args=(app, start.astimezone(JST), 30)),
                   threading.Thread(target=record, args=(other, start + timedelta(hours=n % 3), 30))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        won = [r for r in results if isinstance(r, uuid.UUID)]
        lost = [r for r in results if isinstance(r, DomainError)]
        assert len(won) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], RuleViolation) and lost[0].refers_to == {"existing_outage_id": str(won[0])}
    log = app.repository.get(OutageLog.create_id("kintone"))
    assert len(log.outages) == rounds
    stored_outages = [n for n in app.recorder.select_notifications(start=1, limit=10_000)
                      if n.topic.endswith("Outage.OutageRecorded")]
    assert len(stored_outages) == rounds
