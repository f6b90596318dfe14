"""Property-based tests (hypothesis) on POPO, SQLite and PostgreSQL:

1. any sequence of commands against one contract, refused ones included, stores events whose
   replay (from ``app.events``, through ``repository.get``, and in a fresh application over the same
   store) reproduces exactly the state each command left behind (spec 3, spec 11 "rebuilt from the
   event stream alone");
2. a refused command (``DomainError``) leaves the contract's stream and the notification log unchanged
   (spec 3: "no event is stored").
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from app_kit import CONTRACTOR, customer, jst, replay, stored, summary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.service import ContractsApplication
from domain.calendar import Month
from domain.contract import BillingCycle, Contract
from domain.errors import DomainError
from domain.sla import OutageCause, Remedy

GRADES = ["light", "standard", "premium"]  # kintone, min users 5 / 5 / 10
ARTICLES = ["Art. 2.4.1", "Art. 23.1.1", "Art. 24.2", "Art. 99"]
CAUSES = [OutageCause.PROVIDER_NETWORK, OutageCause.PROVIDER_NETWORK, OutageCause.FORCE_MAJEURE]

day_step = st.one_of(st.integers(0, 6), st.integers(7, 45))
month_offset = st.one_of(st.none(), st.integers(-1, 14))
command = st.one_of(
    st.tuples(st.just("apply"), st.sampled_from(GRADES), st.sampled_from(list(BillingCycle)), st.integers(3, 25)),
    st.tuples(st.just("approve")),
    st.tuples(st.just("reject"), st.sampled_from(ARTICLES)),
    st.tuples(st.just("advance")),
    st.tuples(st.just("advance")),
    st.tuples(st.just("advance")),
    st.tuples(st.just("change"), st.one_of(st.none(), st.sampled_from(GRADES)),
              st.one_of(st.none(), st.integers(3, 25)), month_offset),
    st.tuples(st.just("notice"), month_offset),
    st.tuples(st.just("pay"), st.integers(0, 40), st.sampled_from([1, 1, 2, 3])),
    st.tuples(st.just("overdue"), st.integers(0, 40)),
    st.tuples(st.just("suspend")),
    st.tuples(st.just("stop")),
    st.tuples(st.just("claim"), st.integers(20, 80), st.sampled_from(CAUSES), st.booleans()),
    st.tuples(st.just("decide"), st.sampled_from([None, *Remedy]), st.sampled_from(["default", "min", "max", "over"])),
    st.tuples(st.just("decide"), st.just(None), st.just("default")),
    st.tuples(st.just("cause"), st.sampled_from(ARTICLES)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("delete")),
    st.tuples(st.just("erase")),
    st.tuples(st.just("privacy"), st.sampled_from(["erase", "stop_use"])),
    st.tuples(st.just("contractor"), st.booleans()),
)
scenario = st.tuples(
    st.booleans(),  # start with a trial
    st.sampled_from(GRADES),
    st.integers(5, 20),
    st.sampled_from(list(BillingCycle)),
    st.sampled_from([True, True, True, False]),  # usually applied and approved first, to reach paid states
    st.sampled_from([True, True, False]),  # a scheduler advances the contract when a month begins
    st.lists(st.tuples(day_step, command), min_size=8, max_size=30),
)


class Run:
    """Executes generated commands against one contract, checking the two properties as it goes."""

    def __init__(self, app: ContractsApplication) -> None:
        self.app = app
        self.today = date(2026, 3, 2)
        self.cid: uuid.UUID | None = None
        self.last_saved: tuple[Any, ...] | None = None
        self.claims: list[tuple[uuid.UUID, Any]] = []
        self.refused = 0
        original = type(app).save.__get__(app)  # the class's method: wrappers never nest across runs

        def save(*objs: Any, **kwargs: Any) -> Any:  # capture the state each command produced
            recordings = original(*objs, **kwargs)
            for obj in objs:
                if isinstance(obj, Contract) and obj.id == self.cid:
                    self.last_saved = summary(obj)
            return recordings

        app.save = save  # type: ignore[method-assign]

    @property
    def at(self) -> Any:
        return jst(self.today.year, self.today.month, self.today.day)

    def month(self, offset: int | None) -> Month | None:
        return None if offset is None else Month.of(self.today).plus(offset)

    def contract(self) -> Contract:
        assert self.cid is not None
        return self.app.get_contract(self.cid)

    def invoice_id(self, index: int) -> uuid.UUID:
        """Usually the oldest unpaid invoice (to reach overdue and suspension), else any invoice."""
        invoices = sorted(self.contract().ledger.invoices.values(), key=lambda i: (i.issued_on, i.period))
        unpaid = [i for i in invoices if i.outstanding > 0]
        if unpaid and index % 4:
            return unpaid[0].invoice_id
        return invoices[index % len(invoices)].invoice_id if invoices else uuid.uuid4()

    def start(self, trial: bool, grade: str, users: int, cycle: BillingCycle, conclude: bool = False) -> None:
        number = customer()
        self.cid = Contract.create_id(number, "kintone")
        try:
            self.app.open_contract(number, "kintone", grade, users, CONTRACTOR, self.at, trial=trial, cycle=cycle)
        except DomainError:  # e.g. premium below its minimum: fall back to a valid application
            grade, users = "standard", 10
            self.app.open_contract(number, "kintone", grade, users, CONTRACTOR, self.at, trial=trial, cycle=cycle)
        if conclude:
            if trial:
                self.step(3, ("apply", grade, cycle, users))
            self.step(2, ("approve",))

    def step(self, days: int, cmd: tuple[Any, ...], scheduler: bool = False) -> None:
        month_before = Month.of(self.today)
        self.today += timedelta(days=days)
        if scheduler and Month.of(self.today) != month_before:
            self.step(0, ("advance",))
        assert self.cid is not None
        app, cid, kind = self.app, self.cid, cmd[0]
        if kind == "claim":  # the outage is a separate, service-wide aggregate: record it first
            hours, cause, proofs = cmd[1], cmd[2], cmd[3]
            started = self.at - timedelta(hours=hours + 2)
            try:
                oid = app.record_outage("kintone", started, started + timedelta(hours=hours), cause,
                                        self.at).aggregate_id
            except DomainError:
                return
        before = stored(app, cid)
        try:
            if kind == "apply":
                app.apply_from_trial(cid, cmd[1], cmd[3], cmd[2], None, self.at)
            elif kind == "approve":
                app.approve(cid, self.at)
            elif kind == "reject":
                app.reject(cid, cmd[1], self.at)
            elif kind == "advance":
                app.advance(cid, Month.of(self.today))
            elif kind == "change":
                app.request_change(cid, cmd[1], cmd[2], self.month(cmd[3]), self.at)
            elif kind == "notice":
                app.notice_termination(cid, self.month(cmd[1]), self.at)
            elif kind == "pay":
                iid = self.invoice_id(cmd[1])
                inv = self.contract().ledger.invoices.get(iid)
                amount = max(1, inv.outstanding // cmd[2]) if inv is not None else 1000
                app.record_payment(cid, iid, amount, self.today, self.at)
            elif kind == "overdue":
                app.mark_overdue(cid, self.invoice_id(cmd[1]), self.today)
            elif kind == "suspend":
                app.notice_suspension(cid, self.today)
            elif kind == "stop":
                app.stop_for_non_payment(cid, self.today)
            elif kind == "claim":
                _, assessment = app.claim_sla(cid, oid, self.at, proofs, proofs, "generated")
                self.claims.append((app.claim_id(cid, oid), assessment))
            elif kind == "decide":
                claim_id, a = self.claims[-1] if self.claims else (uuid.uuid4(), None)
                remedy, which = cmd[1], cmd[2]
                amount = None if which == "default" or a is None else {
                    "min": a.minimum, "max": a.maximum, "over": a.maximum + 1}[which]
                app.decide_claim(cid, claim_id, remedy, amount, self.at)
            elif kind == "cause":
                app.terminate_for_cause(cid, cmd[1], self.at)
            elif kind == "expire":
                app.expire_trial(cid, self.today)
            elif kind == "delete":
                app.delete_stored_data(cid, self.today)
            elif kind == "erase":
                app.erase_contractor_data(cid, self.today)
            elif kind == "privacy":
                app.answer_privacy_request(cid, cmd[1], self.at)
            elif kind == "contractor":
                app.change_contractor(cid, {"name": "Renamed K.K."} if cmd[1] else {}, self.at)
        except DomainError as refused:
            # property 2: nothing stored, neither in the contract's stream nor anywhere in the log
            assert stored(app, cid) == before, (cmd, refused)
            assert refused.article, refused
            self.refused += 1

    def check_replays(self, fresh: ContractsApplication | None) -> None:
        assert self.cid is not None and self.last_saved is not None
        loaded = self.app.get_contract(self.cid)
        assert summary(loaded) == self.last_saved  # repository.get replays the stored events
        assert summary(replay(list(self.app.events.get(self.cid)))) == self.last_saved
        if fresh is not None:  # a new application instance over the same database
            assert summary(fresh.get_contract(self.cid)) == self.last_saved
        check_invariants(loaded)


def check_invariants(c: Contract) -> None:
    """Rules that hold in every reachable state (spec 1, 5, 6, 10)."""
    if c.plan is not None and c.state.value not in ("rejected",):
        assert c.users >= c.plan.min_users  # spec 5
    invoices = sorted(c.ledger.invoices.values(), key=lambda i: (i.issued_on, i.kind != "upgrade"))
    for inv in invoices:
        amounts = [line.amount for line in inv.lines]
        assert all(type(a) is int for a in amounts)  # spec 1: whole yen, no floats
        subtotal = sum(line.amount for line in inv.lines if line.kind != "tax")
        taxable = sum(line.amount for line in inv.lines if line.tax_rate is not None)  # late interest: none
        tax = sum(line.amount for line in inv.lines if line.kind == "tax")
        assert tax == max(0, taxable) * 10 // 100  # one 10 % tax per invoice and rate, rounded down
        assert subtotal >= 0 and 0 <= inv.paid <= inv.total  # credits never make an invoice negative
        if inv.kind in ("monthly", "annual", "upgrade"):
            assert inv.due_on == inv.month.plus(1).last_day  # due: last day of the following month
    periodic = [i for i in invoices if i.kind in ("monthly", "annual")]
    step = 12 if c.cycle is BillingCycle.ANNUAL else 1
    if periodic and c.first_month is not None:
        assert [i.month for i in periodic] == [c.first_month.plus(step * k) for k in range(len(periodic))]
    initial = [i for i in invoices if any(line.kind == "initial_fee" for line in i.lines)]
    assert initial in ([], periodic[:1])  # initial fee on the first invoice only (Art. 9.1)
    if c.state.value == "terminated":
        assert c.ended_on is not None and c.retention_until == c.ended_on + timedelta(days=60)  # spec 10


def _examples(store_kind: str) -> int:
    return 20 if store_kind == "postgres" else 40


def test_spec_3_property_random_commands_replay_to_the_same_state(app: ContractsApplication, store, reopen) -> None:
    fresh = reopen()

    @settings(max_examples=_examples(store.kind), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(scenario)
    def check(s: tuple[Any, ...]) -> None:
        trial, grade, users, cycle, conclude, scheduler, steps = s
        run = Run(app)
        run.start(trial, grade, users, cycle, conclude)
        for days, cmd in steps:
            run.step(days, cmd, scheduler)
        run.check_replays(fresh)

    check()


# a refused command on a contract in any reachable state: pick a state by a short random history,
# then fire one command that is refused there
refusable = st.sampled_from([
    ("approve-twice", lambda r: r.app.approve(r.cid, r.at)),
    ("overpay", lambda r: r.app.record_payment(r.cid, r.invoice_id(0), 10**9, r.today, r.at)),
    ("bad-article", lambda r: r.app.terminate_for_cause(r.cid, "Art. 99", r.at)),
    ("early-delete", lambda r: r.app.delete_stored_data(r.cid, date(2026, 1, 1))),
    ("early-erase", lambda r: r.app.erase_contractor_data(r.cid, date(2026, 1, 1))),
    ("no-change", lambda r: r.app.request_change(r.cid, None, None, None, r.at)),
    ("expire-early", lambda r: r.app.expire_trial(r.cid, date(2026, 3, 2))),
    ("stale", lambda r: r.app.change_contractor(r.cid, {"name": "x"}, r.at, expected_version=1)),
    ("below-minimum", lambda r: r.app.request_change(r.cid, "premium", 9, None, r.at)),
])


def test_spec_3_property_refused_command_leaves_the_stream_unchanged(app: ContractsApplication, store) -> None:
    @settings(max_examples=_examples(store.kind), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(day_step, command), max_size=10), refusable)
    def check(history: list[tuple[int, tuple[Any, ...]]], refusal: tuple[str, Any]) -> None:
        run = Run(app)
        run.start(False, "standard", 10, BillingCycle.MONTHLY, conclude=True)
        for days, cmd in history:
            run.step(days, cmd, scheduler=True)
        assert run.cid is not None
        before, events_before = stored(app, run.cid), [type(e).__name__ for e in app.events.get(run.cid)]
        state_before = summary(app.get_contract(run.cid))
        try:
            refusal[1](run)
        except DomainError as error:
            assert error.article
            assert stored(app, run.cid) == before
            assert [type(e).__name__ for e in app.events.get(run.cid)] == events_before
            assert summary(app.get_contract(run.cid)) == state_before

    check()
