"""Spec 8 (Art. 20): an outage is recorded once per service. Instants are compared as instants
(2026-05-10T00:00+09:00 is 2026-05-09T15:00Z); an outage overlapping one already recorded for the
same service is the same outage and is refused, naming the recorded one (issue 14 item 3)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import RuleViolation
from domain.service_events import Outage, OutageLog
from domain.sla import OutageCause

JST = timezone(timedelta(hours=9))
RECORDED_AT = datetime(2026, 5, 20, tzinfo=UTC)
NET = OutageCause.PROVIDER_NETWORK


def _outage(start: datetime, hours: float, service: str = "kintone") -> Outage:
    return Outage.record(service, start, start + timedelta(hours=hours), NET, RECORDED_AT)


def test_spec_8_the_same_instant_written_with_two_offsets_is_one_outage_id() -> None:
    tokyo = datetime(2026, 5, 10, 0, 0, tzinfo=JST)
    zulu = datetime(2026, 5, 9, 15, 0, tzinfo=UTC)
    assert Outage.create_id("kintone", tokyo) == Outage.create_id("kintone", zulu)
    assert _outage(tokyo, 30).id == _outage(zulu, 30).id


def test_spec_8_instants_are_stored_in_utc() -> None:
    o = _outage(datetime(2026, 5, 10, 0, 0, tzinfo=JST), 30)
    assert o.started_at == datetime(2026, 5, 9, 15, 0, tzinfo=UTC) and o.started_at.utcoffset() == timedelta(0)
    assert o.ended_at == datetime(2026, 5, 10, 21, 0, tzinfo=UTC)


def test_spec_8_an_outage_overlapping_a_recorded_one_is_refused_naming_it() -> None:
    log = OutageLog.open("kintone")
    first = _outage(datetime(2026, 5, 10, 0, 0, tzinfo=JST), 30)  # 05-09 15:00Z .. 05-10 21:00Z
    log.admit(first)
    # the same outage sent with Z, and one starting inside it an hour before it ends
    for again in (_outage(datetime(2026, 5, 9, 15, 0, tzinfo=UTC), 30),
                  _outage(datetime(2026, 5, 10, 20, 0, tzinfo=UTC), 5),
                  _outage(datetime(2026, 5, 9, 0, 0, tzinfo=UTC), 100)):  # one that contains it
        with pytest.raises(RuleViolation) as refused:
            log.admit(again)
        assert refused.value.article == "Art. 20"
        assert refused.value.refers_to == {"existing_outage_id": str(first.id)}
    assert [o.outage_id for o in log.outages] == [first.id]


def test_spec_8_an_outage_starting_when_the_last_one_ended_is_another_outage() -> None:
    log = OutageLog.open("kintone")
    first = _outage(datetime(2026, 5, 10, 0, 0, tzinfo=JST), 30)
    log.admit(first)
    after = _outage(first.ended_at.astimezone(JST), 2)  # the same instant, written in JST
    before = _outage(first.started_at - timedelta(hours=3), 3)  # ends exactly as the first starts
    log.admit(after)
    log.admit(before)
    assert [o.outage_id for o in log.outages] == [first.id, after.id, before.id]


def test_spec_8_outages_of_another_service_do_not_overlap() -> None:
    start = datetime(2026, 5, 10, 0, 0, tzinfo=JST)
    kintone, garoon = OutageLog.open("kintone"), OutageLog.open("garoon")
    kintone.admit(_outage(start, 30))
    garoon.admit(_outage(start, 30, "garoon"))
    assert len(kintone.outages) == len(garoon.outages) == 1
    with pytest.raises(Exception, match="another service"):
        kintone.admit(_outage(start + timedelta(days=9), 30, "garoon"))


def test_spec_8_a_new_log_lists_the_outages_recorded_before_it() -> None:
    """Outages stored before the log existed are listed as they are; a new one overlapping them is refused."""
    old = uuid.uuid4()
    log = OutageLog.open("kintone", [(old, datetime(2026, 5, 10, 0, 0, tzinfo=JST),
                                      datetime(2026, 5, 11, 6, 0, tzinfo=JST))])
    with pytest.raises(RuleViolation) as refused:
        log.admit(_outage(datetime(2026, 5, 9, 15, 0, tzinfo=UTC), 30))
    assert refused.value.refers_to == {"existing_outage_id": str(old)}
