"""``Terminated`` version 2 (issue 19): the scheduler's terminations record their business instant
in ``at`` (version 1 recorded ``null``), and a version-1 event already stored reads the same
instant through the library's upcasting (``class_version``, ``upcast_v1_v2``), never rewritten.

Worked by hand (Art. 10.1, rule book 5): kintone standard x 10, monthly, approved 2026-03-02 (first
month April); notice given 2026-04-10 for May: the last month of service is May, the contract ends
2026-05-31 and is terminated at the June month start, 2026-06-01 00:00 JST = 2026-05-31T15:00Z.
Art. 9.5: a stop for non-payment takes effect on its stop date; Art. 18: a discontinuation on its
date (00:00 JST of that day).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from domain.calendar import Month
from domain.contract import BillingCycle, Contract, ContractEvents, TerminationReason
from infrastructure.bootstrap import Services, build_services
from infrastructure.settings import Settings

PERSON = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo"}
JUNE_START = datetime(2026, 5, 31, 15, 0, tzinfo=UTC)  # 2026-06-01 00:00 JST


def _services(path: Path) -> Services:
    return build_services(Settings(sqlite_path=path, database_url=None))  # type: ignore[call-arg]


def _terminated_by_notice(services: Services) -> uuid.UUID:
    app = services.app
    cid = app.open_contract("C-UPCAST", "kintone", "standard", 10, PERSON, datetime(2026, 3, 2, 1, tzinfo=UTC),
                            cycle=BillingCycle.MONTHLY).aggregate_id
    app.approve(cid, datetime(2026, 3, 2, 2, tzinfo=UTC))
    app.advance(cid, Month(2026, 4))
    app.notice_termination(cid, Month(2026, 5), datetime(2026, 4, 10, 1, tzinfo=UTC))
    app.advance(cid, Month(2026, 6))
    return cid


def _state(contract: Contract) -> dict[str, Any]:
    return {k: v for k, v in vars(contract).items() if k != "_pending_events"}


def test_art_10_1_a_scheduled_termination_records_its_business_instant(tmp_path: Path) -> None:
    services = _services(tmp_path / "c.sqlite")
    try:
        cid = _terminated_by_notice(services)
        (ended,) = [e for e in services.app.contract_events(cid) if isinstance(e, ContractEvents.Terminated)]
        assert (ended.reason, ended.ended_on, ended.at) == (TerminationReason.NOTICE, date(2026, 5, 31), JUNE_START)
        stored = [s for s in services.app.recorder.select_events(cid) if s.topic.endswith("Terminated")]
        assert json.loads(stored[0].state)["class_version"] == 2
    finally:
        services.close()


def test_art_10_1_a_version_1_terminated_event_replays_to_the_same_state_with_its_instant(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    services = _services(path)
    try:
        cid = _terminated_by_notice(services)
        before = _state(services.app.get_contract(cid))
        (stored,) = [s for s in services.app.recorder.select_events(cid) if s.topic.endswith("Terminated")]
        table = services.app.recorder.events_table_name  # type: ignore[attr-defined]
    finally:
        services.close()
    old = json.loads(stored.state)
    assert old.pop("class_version") == 2
    old["at"] = None  # as the scheduler stored it before issue 19
    with sqlite3.connect(path) as conn:  # the stored bytes of version 1, in place (a store written before)
        changed = conn.execute(f"UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
                               (json.dumps(old, separators=(",", ":")).encode(), cid.hex,
                                stored.originator_version)).rowcount
    assert changed == 1

    fresh = _services(path)  # no cached state: everything read from the store
    try:
        (raw,) = [s for s in fresh.app.recorder.select_events(cid) if s.topic.endswith("Terminated")]
        assert json.loads(raw.state)["at"] is None and "class_version" not in json.loads(raw.state)  # not rewritten
        (ended,) = [e for e in fresh.app.contract_events(cid) if isinstance(e, ContractEvents.Terminated)]
        assert ended.at == JUNE_START  # upcast: the June month start, as a new event records it
        assert _state(fresh.app.get_contract(cid)) == before
    finally:
        fresh.close()


def test_art_9_5_and_18_version_1_instants_from_the_events_own_fields() -> None:
    upcast = Contract.Terminated.upcast_v1_v2
    cases = [
        (TerminationReason.NOTICE, date(2026, 5, 31), datetime(2026, 5, 31, 15, tzinfo=UTC)),  # Art. 10.1
        (TerminationReason.NOTICE, date(2026, 6, 3), datetime(2026, 5, 31, 15, tzinfo=UTC)),  # 3 SLA days (Art. 21)
        (TerminationReason.TERM_EXPIRED, date(2027, 3, 31), datetime(2027, 3, 31, 15, tzinfo=UTC)),  # Art. 8.2
        (TerminationReason.NON_PAYMENT, date(2026, 7, 10), datetime(2026, 7, 9, 15, tzinfo=UTC)),  # Art. 9.5
        (TerminationReason.DISCONTINUATION, date(2026, 9, 30), datetime(2026, 9, 29, 15, tzinfo=UTC)),  # Art. 18
    ]
    for reason, ended_on, expected in cases:
        state: dict[str, Any] = {"reason": reason, "ended_on": ended_on, "at": None}
        upcast(state)
        assert state["at"] == expected, reason
    given = datetime(2026, 4, 10, 1, tzinfo=UTC)  # for cause (Art. 23.1) always had its command's instant
    state = {"reason": TerminationReason.FOR_CAUSE, "ended_on": date(2026, 4, 10), "at": given}
    upcast(state)
    assert state["at"] == given
