"""Rule book section 13: every event records who caused it (an API key's name and role, an
operator, or the scheduler with the deadline it fired), stored with the event and read back after
a reload, on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from application.actors import Actor, acting_as, actor_of
from application.service import ContractsApplication
from domain.calendar import JST
from domain.contract import BillingCycle
from domain.errors import RuleViolation

CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo"}


def jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=JST).astimezone(UTC)


def test_section_13_each_event_records_the_actor_of_its_command(
        app: ContractsApplication, reopen: Callable[[], ContractsApplication | None]) -> None:
    with acting_as(Actor.api_key("billing-system", "billing")):
        opened = app.open_contract("CUST-A1", "kintone", "standard", 10, CONTRACTOR, jst(2026, 3, 9),
                                   cycle=BillingCycle.MONTHLY)
    with acting_as(Actor.operator("ops-desk")):
        app.approve(opened.aggregate_id, jst(2026, 3, 24))
    app.notice_termination(opened.aggregate_id, None, jst(2026, 3, 25))  # no scope: the application itself

    expected = [Actor("api_key", "billing-system", "billing"), Actor("api_key", "billing-system", "billing"),
                Actor("operator", "ops-desk", "operator"), Actor("system", "application")]
    events = list(app.events.get(opened.aggregate_id))
    assert [type(e).__name__ for e in events] == ["Opened", "Applied", "Approved", "TerminationNoticed"]
    assert [actor_of(e) for e in events] == expected
    other = reopen()
    if other is not None:  # stored, not just held in memory: a second process reads the same actors
        assert [actor_of(e) for e in other.events.get(opened.aggregate_id)] == expected
        assert other.get_contract(opened.aggregate_id).version == app.get_contract(opened.aggregate_id).version


def test_section_13_a_refused_command_records_nothing_and_the_scope_ends(app: ContractsApplication) -> None:
    opened = app.open_contract("CUST-A2", "kintone", "standard", 10, CONTRACTOR, jst(2026, 3, 9),
                                   cycle=BillingCycle.MONTHLY)
    with acting_as(Actor.api_key("k1", "billing")):
        app.approve(opened.aggregate_id, jst(2026, 3, 24))
        with pytest.raises(RuleViolation):
            app.approve(opened.aggregate_id, jst(2026, 3, 24))  # already concluded: refused, nothing stored
    assert len(list(app.events.get(opened.aggregate_id))) == 3
    app.notice_termination(opened.aggregate_id, None, jst(2026, 3, 25))  # outside every scope again
    assert [actor_of(e) for e in app.events.get(opened.aggregate_id)][-2:] == [
        Actor("api_key", "k1", "billing"), Actor("system", "application")]


def test_section_13_scheduler_actor_names_the_deadline() -> None:
    actor = Actor.scheduler("month_start", datetime(2026, 5, 1).date())
    assert actor.as_dict() == {"kind": "scheduler", "name": "scheduler", "deadline": "month_start 2026-05-01"}
    assert actor.describe() == "scheduler: month_start 2026-05-01"
    assert Actor.from_dict(actor.as_dict()) == actor
    assert Actor.api_key("billing-system", "billing").describe() == "billing-system (billing)"
