"""Sweep properties: catch-up equals daily runs, idempotency, failure isolation, batching."""

from __future__ import annotations

import gc
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import pytest
from scheduler_kit import CONTRACTOR, World, jst

from application.actors import Actor, actor_of
from application.collector import resting_thresholds
from application.sweep import SweepProgress
from domain.calendar import Month
from domain.contract import BillingCycle, Contract
from domain.service_events import ServiceDiscontinuation
from domain.sla import OutageCause

GAP_START, GAP_END = date(2026, 3, 25), date(2026, 6, 30)


def populate(w: World) -> list[uuid.UUID]:
    """Contracts with every kind of deadline between 2026-04-01 and 2026-06-30, and no user action
    after 2026-03-25 (so a stopped scheduler has nothing to interleave with)."""
    app = w.app
    ids = []
    t = app.open_contract("T", "kintone", "light", 5, CONTRACTOR, jst(2026, 3, 2), trial=True)  # ends 04-01
    ids.append(t.aggregate_id)
    for n, (service, grade, cycle) in enumerate([("kintone", "standard", BillingCycle.MONTHLY),
                                                  ("kintone", "light", BillingCycle.MONTHLY),
                                                  ("kintone", "standard", BillingCycle.ANNUAL),
                                                  ("kintone", "premium", BillingCycle.MONTHLY),
                                                  ("garoon", "standard", BillingCycle.MONTHLY)]):
        r = app.open_contract(f"M{n}", service, grade, 10, CONTRACTOR, jst(2026, 3, 9), cycle=cycle)
        app.approve(r.aggregate_id, jst(2026, 3, 24))  # first month April 2026 (Art. 8.1)
        ids.append(r.aggregate_id)
    app.notice_termination(ids[2], None, jst(2026, 3, 10))  # Art. 10.2: in time for April -> ends 04-30
    app.request_change(ids[4], None, 12, Month(2026, 5), jst(2026, 3, 10))  # users 10 -> 12 from May
    outage = app.record_outage("kintone", jst(2026, 3, 5, 9), jst(2026, 3, 7, 10), OutageCause.PROVIDER_NETWORK,
                               jst(2026, 3, 7, 12))
    app.claim_sla(t.aggregate_id, outage.aggregate_id, jst(2026, 3, 10), True, True)  # trial: ineligible
    app.announce_discontinuation("garoon", date(2026, 6, 30), jst(2026, 3, 25))
    ids.append(ServiceDiscontinuation.create_id("garoon"))
    return ids


def stream(w: World, aggregate_id: uuid.UUID) -> list[tuple[str, int, dict[str, Any]]]:
    """Event type, version and payload; the recorded timestamp is the only thing left out."""
    return [(type(e).__name__, e.originator_version,
             {k: v for k, v in e.__dict__.items() if k != "timestamp"}) for e in w.app.events.get(aggregate_id)]


def unnumbered(events: list[tuple[str, int, dict[str, Any]]]) -> list[tuple[str, int, dict[str, Any]]]:
    """A stream with invoice numbers and document hashes left out."""
    out = []
    for name, version, payload in events:
        if name == "InvoiceIssued":
            payload = {**payload, "document_hash": None, "document": {**payload["document"], "number": None}}
        out.append((name, version, payload))
    return out


def test_catch_up_after_three_months_equals_running_every_day(store: Callable[..., World]) -> None:
    daily, stopped = store(), store()
    ids = populate(daily)
    assert populate(stopped) == ids  # deterministic ids (Contract.create_id)
    daily.daily(GAP_START, GAP_END)
    report = stopped.sweep_on(GAP_END)
    assert report.complete and not report.failures
    for aggregate_id in ids:
        assert stream(stopped, aggregate_id) == stream(daily, aggregate_id), aggregate_id
    # what happened, in order (spot checks): the annual contract ran April..June without renewal,
    # was reminded 05-24 (7 days before), overdue on 06-01 (April invoice due 05-31), reminded 06-07
    # (7 days after), noticed 06-14, stopped 06-28 (spec 7)
    annual = [name for name, _, _ in stream(stopped, ids[3])]
    assert annual == ["Opened", "Applied", "Approved", "ServicePeriodStarted", "InvoiceIssued", "PaymentReminded",
                      "PaymentOverdue", "PaymentReminded", "SuspensionNoticed", "Terminated"]
    reminded = [(p["stage"], p["reminded_on"]) for name, _, p in stream(stopped, ids[3]) if name == "PaymentReminded"]
    assert reminded == [("before_due", date(2026, 5, 24)), ("after_due", date(2026, 6, 7))]
    assert sum(r.fired for r in daily.reports) == report.fired
    assert report.last_due == GAP_END


def test_sweeping_twice_stores_nothing_more(store: Callable[..., World]) -> None:
    w = store()
    ids = populate(w)
    first = w.sweep_on(GAP_END)
    assert first.fired > 20
    counts = {i: len(stream(w, i)) for i in ids}
    again = w.sweep_on(GAP_END)
    assert (again.fired, again.events, again.failures) == (0, 0, [])
    assert {i: len(stream(w, i)) for i in ids} == counts


def test_sweep_cannot_run_past_today(store: Callable[..., World]) -> None:
    w = store()
    w.clock.set(jst(2026, 4, 1, 6))
    with pytest.raises(ValueError, match="past today"):
        w.sweeper.run(until=date(2026, 4, 2))
    populate(w)
    report = w.sweeper.run(until=date(2026, 3, 31))  # nothing is due before April
    assert report.fired == 0


def test_a_failing_contract_does_not_stop_the_others_and_is_retried(store: Callable[..., World],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    w, twin = store(), store()
    ids = populate(w)
    populate(twin)
    broken = ids[1]
    real_get = w.app.get_contract
    calls: Counter[uuid.UUID] = Counter()

    def flaky_get(contract_id: uuid.UUID, version: int | None = None) -> Contract:
        if contract_id == broken:
            calls[contract_id] += 1
            raise RuntimeError("storage hiccup")
        return real_get(contract_id, version)

    real_get_many = w.app.get_contracts

    def flaky_get_many(contract_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contract | Exception]:
        loaded = real_get_many(contract_ids)
        if broken in loaded:
            calls[broken] += 1
            loaded[broken] = RuntimeError("storage hiccup")
        return loaded

    real_trusted = w.app._trusted

    def uncached(cls: type[Contract], contract_id: uuid.UUID) -> Contract | None:
        return None if contract_id == broken else real_trusted(cls, contract_id)  # loaded from the store

    monkeypatch.setattr(w.app, "get_contract", flaky_get)
    monkeypatch.setattr(w.app, "get_contracts", flaky_get_many)
    monkeypatch.setattr(w.app, "_trusted", uncached)  # the broken contract is not in the aggregate cache
    report = w.sweep_on(GAP_END)
    assert report.complete
    assert [(f.aggregate_id, f.kind, f.due_on, f.attempts) for f in report.failures] == \
        [(broken, "month_start", date(2026, 4, 1), 3)]  # its first deadline; the later ones wait
    assert calls[broken] == 1 + 3  # once in the batch, then max_attempts one by one
    assert [name for name, _, _ in stream(w, broken)] == ["Opened", "Applied", "Approved"]
    twin.sweep_on(GAP_END)
    for other in ids[2:]:  # the same, but for the numbers: the broken contract drew none (rule book 6.1)
        assert unnumbered(stream(w, other)) == unnumbered(stream(twin, other))
    monkeypatch.undo()
    retry = w.sweep_on(GAP_END)
    assert not retry.failures and retry.fired >= 4
    # same business dates: same events as if never failed (its invoices numbered after the others')
    assert unnumbered(stream(w, broken)) == unnumbered(stream(twin, broken))


def test_too_many_failures_in_a_row_stop_the_run(store: Callable[..., World], monkeypatch: pytest.MonkeyPatch) -> None:
    w = store(max_consecutive_failures=3, max_attempts=1)
    populate(w)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("database down")

    monkeypatch.setattr(w.app, "get_contract", down)
    monkeypatch.setattr(w.app, "get_contracts", down)  # a chunk's bulk read fails too: one by one, which fail
    monkeypatch.setattr(w.app, "_trusted", lambda cls, cid: None)  # nothing cached: every load asks the store
    report = w.sweep_on(GAP_END)
    assert not report.complete and "3 failures in a row" in (report.stopped or "")
    assert len(report.failures) == 3


def test_stop_request_ends_the_run_and_the_next_run_resumes(store: Callable[..., World]) -> None:
    w, twin = store(stop_check_seconds=0), store()
    ids = populate(w)
    populate(twin)
    w.clock.set(jst(2026, 6, 30, 6))
    checks = iter(range(100_000))
    report = w.sweeper.run(should_stop=lambda: next(checks) >= 5)
    assert not report.complete and "stop requested" in (report.stopped or "")
    assert 0 < report.fired
    w.sweep_on(GAP_END)
    twin.sweep_on(GAP_END)
    for aggregate_id in ids:
        assert stream(w, aggregate_id) == stream(twin, aggregate_id)


class Recorder(SweepProgress):
    def __init__(self) -> None:
        self.found_total, self.done_total = 0, 0
        self.kinds: Counter[str] = Counter()

    def found(self, count: int) -> None:
        self.found_total += count

    def done(self, count: int, kind: str, due_on: date) -> None:
        self.done_total += count
        self.kinds[kind] += count


def test_month_start_is_batched_and_reports_progress(store: Callable[..., World],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    w = store(batch_size=7, progress_every=10)
    app = w.app
    ids = []
    for n in range(25):
        r = app.open_contract(f"B{n:03d}", "kintone", "light", 5, CONTRACTOR, jst(2026, 3, 9),
                              cycle=BillingCycle.MONTHLY)
        app.approve(r.aggregate_id, jst(2026, 3, 24))
        ids.append(r.aggregate_id)
    saves: list[int] = []
    real_save = app.save

    def counting_save(*aggregates: Any, **kwargs: Any) -> Any:
        saves.append(len(aggregates))
        return real_save(*aggregates, **kwargs)

    app.save = counting_save  # type: ignore[method-assign]
    progress = Recorder()
    w.clock.set(jst(2026, 4, 1, 6))
    with caplog.at_level("INFO", logger="application.sweep"):
        report = w.sweeper.run(progress=progress)
    assert saves == [8, 8, 8, 5]  # 25 contracts in chunks of 7 (+ the number sequence), one transaction each
    assert report.by_kind["month_start"] == 25 and report.events == 50  # period + InvoiceIssued
    assert progress.found_total == progress.done_total == 25
    logged = [r.getMessage().split(" (")[0] for r in caplog.records if r.name == "application.sweep"]
    # a progress line each time another 10 are done (chunks of 7 cross 10 at 14 and 20 at 21), and the end
    expected = [f"month_start 2026-04-01: {n}/25 contracts" for n in (14, 21, 25)]
    assert [m for m in logged if "contracts" in m] == expected
    fired = [r.getMessage() for r in caplog.records if r.name == "application.sweep.fired"]
    assert f"fired month_start for contract {ids[0]} due 2026-04-01: ServicePeriodStarted, InvoiceIssued" in fired
    assert not any("Example Trading" in r.getMessage() or "hanako" in r.getMessage() for r in caplog.records)


def test_a_concurrent_writer_makes_the_chunk_fall_back_to_single_commands(store: Callable[..., World]) -> None:
    w = store(batch_size=10)
    app = w.app
    ids = []
    for n in range(5):
        r = app.open_contract(f"X{n}", "kintone", "light", 5, CONTRACTOR, jst(2026, 3, 9), cycle=BillingCycle.MONTHLY)
        app.approve(r.aggregate_id, jst(2026, 3, 24))
        ids.append(r.aggregate_id)
    real_get_many = app.get_contracts
    raced = []

    def racing_get_many(contract_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contract | Exception]:
        loaded = real_get_many(contract_ids)
        if ids[2] in loaded and not raced:  # someone else runs April for this contract meanwhile
            raced.append(ids[2])
            app.advance(ids[2], Month(2026, 4))
        return loaded

    app.get_contracts = racing_get_many  # type: ignore[method-assign]
    report = w.sweep_on(date(2026, 4, 1))
    assert raced and not report.failures
    assert report.by_kind["month_start"] == 4 and report.noop == 1
    for cid in ids:
        assert w.names(cid).count("ServicePeriodStarted") == 1


@pytest.mark.postgres
@pytest.mark.reliability
def test_two_sweepers_at_once_store_each_event_once(pg_world: Callable[..., World],
                                                    pg_schemas: Callable[[], dict[str, str]]) -> None:
    env = pg_schemas()
    a = pg_world(env, batch_size=5)
    b = pg_world(env, batch_size=5)
    reference = pg_world(batch_size=5)
    ids = []
    for n in range(30):
        for w in (a, reference):
            r = w.app.open_contract(f"P{n:03d}", "kintone", "standard" if n % 2 else "light", 10, CONTRACTOR,
                                    jst(2026, 3, 2), trial=n % 5 == 0,
                                    cycle=None if n % 5 == 0 else BillingCycle.MONTHLY)
            if n % 5:
                w.app.approve(r.aggregate_id, jst(2026, 3, 24))
        ids.append(r.aggregate_id)
    reference.sweep_on(GAP_END)
    barrier = threading.Barrier(2)
    reports = {}
    errors = []

    def sweep(name: str, w: World) -> None:
        try:
            w.clock.set(jst(2026, 6, 30, 6))
            barrier.wait()
            reports[name] = w.sweeper.run()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(n, w)) for n, w in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and set(reports) == {"a", "b"}

    def keyed(w: World) -> Counter[tuple[uuid.UUID, str, str]]:
        out: Counter[tuple[uuid.UUID, str, str]] = Counter()
        for cid in ids:
            for e in w.app.events.get(cid):
                ref = str(getattr(e, "month", "") or getattr(e, "invoice_id", "")) + getattr(e, "stage", "")
                out[(cid, type(e).__name__, ref)] += 1
        return out

    together = keyed(a)
    assert max(together.values()) == 1  # each (contract, event type, ref) stored once
    assert together == keyed(reference)  # and nothing missing
    assert reports["a"].fired + reports["b"].fired == reference.reports[-1].fired
    assert reports["a"].fired > 0 and reports["b"].fired > 0  # both really worked at the same time


def test_the_projection_lists_what_the_aggregates_call_for(store: Callable[..., World]) -> None:
    """Oracle check: after every daily sweep, the deadlines projection equals the deadlines computed
    by loading every aggregate (so the sweep neither misses work nor retries what is done)."""
    from scan_deadlines import ScanDeadlines

    w = store()
    populate(w)
    scan = ScanDeadlines(w.app)
    far = date(2100, 1, 1)
    day = GAP_START
    while day <= GAP_END:
        w.sweep_on(day)
        assert w.deadlines.wait_for(w.app.recorder.max_notification_id() or 0)
        assert sorted(w.deadlines.deadlines_until(far)) == sorted(scan.deadlines_until(far)), day
        day += timedelta(days=7)


def test_a_day_larger_than_a_page_is_swept_a_page_at_a_time(store: Callable[..., World]) -> None:
    """Memory stays bounded by the page (issue 7): a big day is read kind by kind, a page at a time,
    never whole, and the events are exactly those of a sweep that reads each day in one go."""
    paged, whole = store(page_size=3, batch_size=2), store()
    ids: list[uuid.UUID] = []
    for w in (paged, whole):
        ids = populate(w)
        for n in range(9):  # nine more month starts on 2026-04-01 (Art. 8.1: approved in March)
            r = w.app.open_contract(f"P{n}", "kintone", "light", 5, CONTRACTOR, jst(2026, 3, 9),
                                    cycle=BillingCycle.MONTHLY)
            w.app.approve(r.aggregate_id, jst(2026, 3, 24))
            ids.append(r.aggregate_id)
    reads: list[int | None] = []
    source = paged.deadlines
    real_until, real_on = source.deadlines_until, source.deadlines_on

    def until(day: date, limit: int | None = None, after: Any = None) -> list[Any]:
        reads.append(limit)
        return real_until(day, limit, after)

    def on(day: date, kind: str, limit: int) -> list[Any]:
        reads.append(limit)
        return real_on(day, kind, limit)

    source.deadlines_until, source.deadlines_on = until, on  # type: ignore[method-assign]
    report = paged.sweep_on(GAP_END)
    reference = whole.sweep_on(GAP_END)
    assert report.complete and not report.failures
    assert (report.fired, report.events, report.by_kind) == (reference.fired, reference.events, reference.by_kind)
    assert report.by_kind["month_start"] >= 9 * 3  # April, May and June for each of the nine at least
    assert None not in reads  # never a whole day at once
    assert max(r for r in reads if r is not None) <= 3 + report.noop  # page size + what was found done
    assert report.passes > reference.passes  # the big days took several pages
    for aggregate_id in ids:
        assert stream(paged, aggregate_id) == stream(whole, aggregate_id), aggregate_id


def test_a_big_day_reads_its_next_page_while_the_read_models_apply_the_last(store: Callable[..., World]) -> None:
    """Issue 21: the next page of a big day's kind is read on past the last one's cursor without
    waiting for the read models to apply the page just handled (only the one before it), so the
    sweep and the projections work side by side; the events are those of a whole-day sweep."""
    paged, whole = store(page_size=3, batch_size=2), store()
    for w in (paged, whole):
        populate(w)
        for n in range(9):  # nine more month starts on 2026-04-01 (Art. 8.1: approved in March)
            r = w.app.open_contract(f"P{n}", "kintone", "light", 5, CONTRACTOR, jst(2026, 3, 9),
                                    cycle=BillingCycle.MONTHLY)
            w.app.approve(r.aggregate_id, jst(2026, 3, 24))
    calls: list[tuple[str, bool, int]] = []  # (read or wait, read on past a cursor / position, latest written)
    source, app = paged.deadlines, paged.app
    real_until, real_wait = source.deadlines_until, source.wait_for

    def until(day: date, limit: int | None = None, after: Any = None) -> list[Any]:
        calls.append(("read", after is not None, app.recorder.max_notification_id() or 0))
        return real_until(day, limit, after)

    def wait_for(position: int, timeout: float = 5.0) -> bool:
        calls.append(("wait", position >= (app.recorder.max_notification_id() or 0), position))
        return real_wait(position, timeout)

    source.deadlines_until, source.wait_for = until, wait_for  # type: ignore[method-assign]
    report = paged.sweep_on(date(2026, 4, 1))
    reference = whole.sweep_on(date(2026, 4, 1))
    assert report.complete and not report.failures
    assert (report.fired, report.events, report.by_kind) == (reference.fired, reference.events, reference.by_kind)
    read_on = [i for i, (what, past_cursor, _) in enumerate(calls) if what == "read" and past_cursor]
    assert len(read_on) >= 2  # 13 month starts on the day, 3 to a page
    for i in read_on:  # since the page before was read: no wait for everything written so far
        previous_read = max(j for j in range(i) if calls[j][0] == "read")
        assert not [c for c in calls[previous_read:i] if c[0] == "wait" and c[1]], calls[previous_read:i]


def test_a_sweep_relaxes_the_collector_only_while_it_runs(store: Callable[..., World]) -> None:
    """Issue 21: a month start allocates millions of short-lived objects (folded contracts, events);
    the cyclic collector at its default thresholds cost ~15 % of the sweep's CPU, so the sweep raises
    the young threshold while it runs and restores it after, whether it succeeds or fails."""
    w = store()
    populate(w)
    before = resting_thresholds()  # not a runner batch's relaxed reading
    seen: list[tuple[int, int, int]] = []
    real_get = w.app.get_contracts

    def watching(ids: Sequence[uuid.UUID]) -> Any:
        seen.append(gc.get_threshold())
        return real_get(ids)

    w.app.get_contracts = watching  # type: ignore[method-assign]
    report = w.sweep_on(date(2026, 4, 1))
    assert report.by_kind["month_start"] and seen and all(t[0] > before[0] for t in seen)
    assert resting_thresholds() == before

    def failing(until: date, limit: int | None = None, after: Any = None) -> list[Any]:
        raise RuntimeError("injected")

    w.deadlines.deadlines_until = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="injected"):
        w.sweep_on(date(2026, 5, 1))
    assert resting_thresholds() == before


def test_section_13_scheduler_events_record_the_deadline_they_fired(store: Callable[..., World]) -> None:
    """Both the batched path (month start, discontinuation) and the one-by-one path (trial end,
    overdue) stamp the scheduler with the deadline's kind and date; commands keep their own actor."""
    w = store()
    ids = populate(w)
    w.sweep_on(GAP_END)
    trial = {type(e).__name__: actor_of(e) for e in w.app.events.get(ids[0])}
    assert trial["TrialExpired"] == Actor("scheduler", "scheduler", deadline="trial_end 2026-04-01")
    assert trial["Opened"] == Actor("system", "application")  # populate() calls the application directly
    monthly = [(type(e).__name__, actor_of(e)) for e in w.app.events.get(ids[1])]
    starts = [a for name, a in monthly if name in ("ServicePeriodStarted", "Renewed")]
    assert [a.deadline for a in starts if a is not None] == [
        "month_start 2026-04-01", "month_start 2026-05-01", "month_start 2026-06-01"]
    garoon = [(type(e).__name__, actor_of(e)) for e in w.app.events.get(ids[5])]
    assert garoon[-5:] == [  # unpaid April invoice (spec 7): overdue, reminded, noticed, stopped, each by its
        # deadline; May's invoice (due 06-30) is reminded 7 days before its due date, in the notice period
        ("PaymentOverdue", Actor("scheduler", "scheduler", deadline="payment_overdue 2026-06-01")),
        ("PaymentReminded", Actor("scheduler", "scheduler", deadline="overdue_reminder 2026-06-07")),
        ("SuspensionNoticed", Actor("scheduler", "scheduler", deadline="suspension_notice 2026-06-14")),
        ("PaymentReminded", Actor("scheduler", "scheduler", deadline="payment_reminder 2026-06-23")),
        ("Terminated", Actor("scheduler", "scheduler", deadline="suspension_stop 2026-06-28"))]
    discontinuation = [actor_of(e) for e in w.app.events.get(ids[6])]
    assert discontinuation[0] == Actor("system", "application")  # announced through the application
    assert discontinuation[-1] == Actor("scheduler", "scheduler", deadline="discontinuation 2026-06-30")
