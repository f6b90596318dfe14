"""The deadline sweep (issue 5): time passing turns into commands.

One ``Sweeper.run()`` reads the deadlines projection for everything due up to today (the
JST date of the injected clock) and issues the matching command for each, with the
deadline's own date as the business time. That makes a sweep after a long stop replay
history exactly as if it had run every day:

* deadlines are handled **one day at a time**, oldest first, in ``domain.deadlines.DEADLINE_KINDS`` order
  within a day; after each pass the sweep waits for the read models to catch up with what
  it wrote and reads again, because handling a deadline creates new ones (a renewal
  creates the next month start and payment due date, an overdue creates a suspension
  notice date ...). A later day is only looked at when nothing of an earlier day is left.
* a command refused with ``RuleViolation`` means "already done or no longer applicable"
  (another sweeper won the race, the customer paid, the trial was converted): that is
  success, logged at debug level. ``advance`` for a month already run stores nothing.
* any other failure is counted for its aggregate, retried up to ``max_attempts`` times in
  the run, then the aggregate is left alone for the rest of the run (so its own deadlines
  stay in order) and retried by the next run. The other aggregates carry on.
* month starts (every monthly contract renews on the 1st) are batched: a chunk of
  contracts is loaded, advanced and saved in **one** transaction; a concurrent writer
  (``IntegrityError``) makes that chunk fall back to one command per contract, which
  reloads and finds the month already run.
* after a batch (or a single command) issued invoices, the customers invoiced whose account holds
  credit have it applied to them (rule book 7, ``apply_credit_to_new_invoices``: idempotent,
  one follow-up transaction per customer, as the scheduler with the deadline fired).

Idempotency therefore comes from the aggregates (commands for past deadlines are refused
or no-ops) plus optimistic concurrency, not from the scheduler: two sweeps at once, or one
sweep run twice, store each event once.

Log lines name the deadline kind, the aggregate id, the due date and the event names;
never personal data.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from eventsourcing.persistence import IntegrityError

from application.actors import Actor, acting_as, stamp
from application.clock import Clock
from application.collector import relaxed_collector
from application.read_models import Deadline
from application.service import CommandResult, ContractsApplication
from domain.calendar import Month, jst_date, jst_start
from domain.contract import DISCONTINUED_STATES, Contract
from domain.deadlines import (
    CONTRACTOR_DATA_ERASURE,
    DEADLINE_KIND_NAMES,
    DISCONTINUATION,
    MONTH_START,
    OVERDUE_REMINDER,
    PAYMENT_OVERDUE,
    PAYMENT_REMINDER,
    SLA_WINDOW_END,
    STORED_DATA_DELETION,
    SUSPENSION_NOTICE,
    SUSPENSION_STOP,
    TERMS_CHANGE_EFFECTIVE,
    TRIAL_END,
)
from domain.errors import ConcurrencyConflict, DomainError, RuleViolation
from domain.invoice_numbers import NumberBook
from domain.service_events import ServiceDiscontinuation
from domain.settlement import AFTER_DUE, BEFORE_DUE

logger = logging.getLogger(__name__)
fired_logger = logging.getLogger(__name__ + ".fired")  # one line per fired deadline
ISSUED = "InvoiceIssued"  # rule book 7: an issued invoice is paid from the customer's credit balance
CREDIT_RETRY = "credit_retry"  # the actor's deadline text of a retried credit step (not a deadline kind)

KIND_ORDER = {kind: index for index, kind in enumerate(DEADLINE_KIND_NAMES)}
LIVE_STATES = tuple(s.value for s in DISCONTINUED_STATES)  # Art. 18 ends these


class DeadlineSource(Protocol):
    """The part of ``ReadModels`` the sweep needs."""

    def wait_for(self, position: int, timeout: float = 5.0) -> bool: ...

    def deadlines_until(self, until: date, limit: int | None = None,
                        after: Deadline | None = None) -> list[Deadline]: ...

    def deadlines_on(self, day: date, kind: str, limit: int) -> list[Deadline]: ...


class SweepProgress:
    """Progress callbacks (no-ops here; the CLI draws a tqdm bar)."""

    def found(self, count: int) -> None:
        """``count`` more deadlines are known to be due."""

    def done(self, count: int, kind: str, due_on: date) -> None:
        """``count`` deadlines of ``kind`` due ``due_on`` were handled (fired, no-op or failed)."""


@dataclass(frozen=True)
class SweepFailure:
    aggregate_id: uuid.UUID
    kind: str
    due_on: date
    ref: str
    error: str  # exception type, plus the article and message of a domain error
    attempts: int


@dataclass
class SweepReport:
    today: date
    until: date
    fired: int = 0  # deadlines whose command stored events
    events: int = 0  # events stored
    noop: int = 0  # already done or no longer applicable
    retried: int = 0  # attempts repeated within the run
    failures: list[SweepFailure] = field(default_factory=list)
    held: list[SweepFailure] = field(default_factory=list)  # waiting on an operator (rule book 10: credit owed)
    by_kind: Counter[str] = field(default_factory=Counter)  # fired per kind
    passes: int = 0  # pages of deadlines handled
    last_due: date | None = None  # latest due date handled
    complete: bool = True  # False: stopped early (``stopped`` says why); the next run resumes
    stopped: str | None = None
    seconds: float = 0.0
    waited_seconds: float = 0.0  # of ``seconds``: waiting for the read models to catch up
    credit_retried: int = 0  # customers whose failed credit step a retry applied (rule book 7)

    def summary(self) -> str:
        kinds = ", ".join(f"{k}={n}" for k, n in sorted(self.by_kind.items(), key=lambda kv: KIND_ORDER[kv[0]]))
        text = (f"sweep to {self.until}: fired {self.fired} deadlines ({kinds or 'none'}), {self.events} events, "
                f"{self.noop} already done, {len(self.failures)} failed, {self.passes} passes, "
                f"{self.seconds:.2f}s ({self.waited_seconds:.2f}s waiting for the read models)")
        if self.held:
            text += f"; {len(self.held)} held for an operator (rule book 10: credit balance owed to the customer)"
        if self.credit_retried:
            text += f"; credit applied on retry for {self.credit_retried} customer(s)"
        if not self.complete:
            text += f"; stopped early: {self.stopped}"
        return text


def _sort_key(d: Deadline) -> tuple[date, int, int, str, str]:
    # a service-level discontinuation (completion) after the contracts it ends
    service_level = int(d.kind == DISCONTINUATION.name and d.aggregate_id == ServiceDiscontinuation.create_id(d.ref))
    return d.due_on, KIND_ORDER.get(d.kind, len(KIND_ORDER)), service_level, str(d.aggregate_id), d.ref


def _chunks(items: Sequence[Deadline], size: int) -> Iterable[Sequence[Deadline]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _Abort(Exception):
    """Stop the run (leadership lost, too many consecutive failures)."""


class _Run:
    """State of one ``Sweeper.run``."""

    def __init__(self, report: SweepReport, progress: SweepProgress, should_stop: Callable[[], bool],
                 stop_check_seconds: float) -> None:
        self.report = report
        self.progress = progress
        self._should_stop = should_stop
        self._stop_check_seconds = stop_check_seconds
        self._last_check = 0.0
        self.skip: set[Deadline] = set()  # no-op or failed this run: do not pick them up again
        self.blocked: set[uuid.UUID] = set()  # aggregates with a failure: nothing more for them this run
        self.noop_seen: set[Deadline] = set()
        self.position: int | None = None  # last notification id written in the current pass
        self.consecutive_failures = 0

    def check_stop(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_check >= self._stop_check_seconds:
            self._last_check = now
            if self._should_stop():
                raise _Abort("stop requested (leadership lost or shutting down)")

    def wrote(self, position: int | None) -> None:
        if position is not None and (self.position is None or position > self.position):
            self.position = position


class Sweeper:
    """Fires due deadlines. ``app`` is the write side, ``read_models`` the deadlines projection."""

    def __init__(self, app: ContractsApplication, read_models: DeadlineSource, clock: Clock, *,
                 page_size: int = 2000, batch_size: int = 500, max_attempts: int = 3,
                 max_consecutive_failures: int = 50, wait_timeout: float = 60.0,
                 progress_every: int = 10_000, stop_check_seconds: float = 1.0,
                 retry_pause: float = 0.05) -> None:
        self.app = app
        self.read_models = read_models
        self.clock = clock
        self.page_size = page_size
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.max_consecutive_failures = max_consecutive_failures
        self.wait_timeout = wait_timeout
        self.progress_every = progress_every
        self.stop_check_seconds = stop_check_seconds
        self.retry_pause = retry_pause
        self._held_logged: set[uuid.UUID] = set()  # contracts whose held erasure was logged (``_held``)

    # -- the run --------------------------------------------------------------------------------------
    def today(self) -> date:
        return jst_date(self.clock.now())

    def run(self, until: date | None = None, *, should_stop: Callable[[], bool] | None = None,
            progress: SweepProgress | None = None) -> SweepReport:
        """Fire every deadline due on or before ``until`` (default and maximum: today, JST)."""
        started = time.monotonic()
        today = self.today()
        if until is not None and until > today:
            raise ValueError(f"cannot sweep past today ({today} JST by the service clock): {until}")
        report = SweepReport(today=today, until=until or today)
        run = _Run(report, progress or SweepProgress(), should_stop or (lambda: False), self.stop_check_seconds)
        with relaxed_collector():  # issue 21: the default thresholds cost ~15 % of a month start's CPU
            self._sweep(report, run)
        report.seconds = time.monotonic() - started
        fields = {"until": report.until.isoformat(), "fired": report.fired, "events": report.events,
                  "failed": len(report.failures), "complete": report.complete, "seconds": round(report.seconds, 3)}
        if report.fired or report.failures or report.held or not report.complete:
            logger.info("%s", report.summary(), extra={"fields": fields})  # JSON logs: these as fields
        else:
            logger.debug("%s", report.summary(), extra={"fields": fields})
        return report

    def _sweep(self, report: SweepReport, run: _Run) -> None:
        try:
            self._catch_up_read_models("at the start", report)
            self._retry_credit(run)
            while True:
                run.check_stop(force=True)
                todo, cursor = self._next_slice(report.until, run)
                if not todo:
                    break
                run.position = None
                self._handle_pages(todo, cursor, run)
                self._wait_or_stop(run.position, report)
        except _Abort as stop:
            report.complete, report.stopped = False, str(stop)
            logger.warning("sweep stopped early: %s", stop)

    def _handle_pages(self, todo: list[Deadline], cursor: Deadline | None, run: _Run) -> None:
        """Handle a slice; a full page of one kind of a day (``cursor``: its last row) is followed by
        the kind's next page, read on past the cursor without waiting for the read models to apply
        the page before (they keep up with the previous page while this one is handled: at most one
        page behind, so the sweep and the projections run side by side, issue 21). The kind's rows
        past the cursor were not touched in this pass; what handling created or left behind is read
        again after the final wait, as after any pass."""
        behind: int | None = None  # the position written by the page before this one
        while True:
            run.report.passes += 1
            run.progress.found(len(todo))
            self._handle_slice(todo, run)
            if cursor is None:
                return
            if behind is not None:
                self._wait_or_stop(behind, run.report)
            behind = run.position
            run.check_stop(force=True)
            todo, cursor = self._read_on(cursor, run)

    def _wait_or_stop(self, position: int | None, report: SweepReport) -> None:
        if position is not None and not self._wait(position, report):
            raise _Abort(f"read models did not reach position {position} within {self.wait_timeout:.0f}s")

    def _wait(self, position: int, report: SweepReport) -> bool:
        started = time.monotonic()
        try:
            return self.read_models.wait_for(position, self.wait_timeout)
        finally:
            report.waited_seconds += time.monotonic() - started

    def _catch_up_read_models(self, when: str, report: SweepReport) -> None:
        """Deadlines are only complete once the projection has seen every event recorded so far."""
        latest = self.app.recorder.max_notification_id()
        if latest and not self._wait(latest, report):
            raise _Abort(f"read models are behind the event log {when} (did not reach position {latest} within "
                         f"{self.wait_timeout:.0f}s): is the projection runner running?")

    def _next_slice(self, until: date, run: _Run) -> tuple[list[Deadline], Deadline | None]:
        """The open deadlines of the earliest due day, in firing order (``KIND_ORDER``), and the
        cursor to read on from (``_read_on``) when they are a full page of one kind, else None.

        A page is read first. If the day may be larger than the page, the pass takes a page of
        the day's first kind (in firing order) that has anything open: later kinds of the day
        wait until it is done, exactly as if the whole day had been read, while memory stays
        bounded by the page size (a month start of 100,000 contracts is 50 pages, not one list)."""
        limit = self.page_size + len(run.skip)
        page = self.read_models.deadlines_until(until, limit=limit)
        todo = [d for d in page if d not in run.skip and d.aggregate_id not in run.blocked]
        if not todo:
            return [], None
        day = min(d.due_on for d in todo)
        cursor = None
        if len(page) >= limit and max(d.due_on for d in page) == day:
            page, todo, cursor = self._first_open_kind(day, limit, run)
        for d in page:
            if d in run.noop_seen:  # found done earlier in this run, still listed after the wait
                run.noop_seen.discard(d)
                logger.info("%s for %s due %s is still listed after it was found done: the projection is behind "
                            "(another writer) or disagrees with the aggregate", d.kind, d.aggregate_id, d.due_on)
        return sorted((d for d in todo if d.due_on == day), key=_sort_key), cursor

    def _read_on(self, cursor: Deadline, run: _Run) -> tuple[list[Deadline], Deadline | None]:
        """The next page of ``cursor``'s day and kind, past the cursor (the source's order), and the
        cursor after it while the page is full and of that kind only."""
        page = self.read_models.deadlines_until(cursor.due_on, limit=self.page_size, after=cursor)
        same = [d for d in page if d.due_on == cursor.due_on and d.kind == cursor.kind]
        todo = sorted((d for d in same if d not in run.skip and d.aggregate_id not in run.blocked), key=_sort_key)
        more = len(same) == len(page) >= self.page_size
        return todo, (same[-1] if more else None)

    def _first_open_kind(self, day: date, limit: int,
                         run: _Run) -> tuple[list[Deadline], list[Deadline], Deadline | None]:
        for kind in DEADLINE_KIND_NAMES:
            page = self.read_models.deadlines_on(day, kind, limit)
            todo = [d for d in page if d not in run.skip and d.aggregate_id not in run.blocked]
            if todo:
                return page, todo, (page[-1] if len(page) >= limit else None)
        page = self.read_models.deadlines_until(day, limit=None)  # only kinds this sweep does not know
        return page, [d for d in page if d not in run.skip and d.aggregate_id not in run.blocked], None

    def _handle_slice(self, todo: list[Deadline], run: _Run) -> None:
        index = 0
        while index < len(todo):
            kind = todo[index].kind
            end = index
            while end < len(todo) and todo[end].kind == kind:
                end += 1
            group = todo[index:end]
            if kind == MONTH_START.name:
                self._batched(group, run, lambda c, d, book: c.advance_to(Month.of(d.due_on), self.app.policy, book))
            else:
                for d in group:
                    run.check_stop()
                    if d.kind == DISCONTINUATION.name and d.aggregate_id == ServiceDiscontinuation.create_id(d.ref):
                        self._discontinue(d, run)
                    else:
                        self._handle_one(d, run)
                    run.progress.done(1, d.kind, d.due_on)
            index = end

    # -- one deadline ---------------------------------------------------------------------------------
    def _handle_one(self, d: Deadline, run: _Run) -> None:
        if d.aggregate_id in run.blocked:
            run.skip.add(d)
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                with acting_as(Actor.scheduler(d.kind, d.due_on)):
                    result = self.command(d)
            except RuleViolation as refused:
                if d.kind == CONTRACTOR_DATA_ERASURE.name and "customer_account" in refused.refers_to:
                    self._held(d, run, refused)
                self._noop(d, run, f"refused: {refused}")
                return
            except Exception as exc:  # noqa: BLE001 - one aggregate must not stop the others
                transient = isinstance(exc, ConcurrencyConflict) or not isinstance(exc, DomainError | ValueError)
                if transient and attempt < self.max_attempts:
                    run.report.retried += 1
                    logger.info("retrying %s for %s due %s after %s (attempt %d of %d)", d.kind, d.aggregate_id,
                                d.due_on, type(exc).__name__, attempt + 1, self.max_attempts)
                    if not isinstance(exc, ConcurrencyConflict):
                        time.sleep(self.retry_pause * attempt)  # a reloaded aggregate can go at once
                    continue
                self._failed(d, run, exc, attempt)
                return
            self._succeeded(d, run, result)
            return

    def command(self, d: Deadline) -> CommandResult:
        """The command a deadline calls for, with the deadline's date as business time."""
        app, on, aid = self.app, d.due_on, d.aggregate_id
        match d.kind:
            case TRIAL_END.name:
                return app.expire_trial(aid, on)
            case MONTH_START.name:
                return app.advance(aid, Month.of(on))
            case PAYMENT_REMINDER.name:
                return app.remind_payment(aid, uuid.UUID(d.ref), BEFORE_DUE, on)
            case PAYMENT_OVERDUE.name:
                return app.mark_overdue(aid, uuid.UUID(d.ref), on)
            case OVERDUE_REMINDER.name:
                return app.remind_payment(aid, uuid.UUID(d.ref), AFTER_DUE, on)
            case SUSPENSION_NOTICE.name:
                return app.notice_suspension(aid, on)
            case SUSPENSION_STOP.name:
                return app.stop_for_non_payment(aid, on)
            case SLA_WINDOW_END.name:
                return app.decide_claim(aid, uuid.UUID(d.ref), None, None, jst_start(on))
            case STORED_DATA_DELETION.name:
                return app.delete_stored_data(aid, on)
            case CONTRACTOR_DATA_ERASURE.name:
                return app.erase_contractor_data(aid, on)
            case DISCONTINUATION.name:
                if aid == ServiceDiscontinuation.create_id(d.ref):
                    return app.complete_discontinuation(d.ref, on)
                return app.terminate_for_discontinuation(aid, d.ref)
            case TERMS_CHANGE_EFFECTIVE.name:
                return app.terms_change_takes_effect(d.ref, on)
        raise ValueError(f"unknown deadline kind {d.kind!r}")

    def _succeeded(self, d: Deadline, run: _Run, result: CommandResult) -> None:
        run.consecutive_failures = 0
        if result.events == 0:
            self._noop(d, run, "nothing to do")
            return
        names = [type(e).__name__ for e in
                 self.app.events.get(result.aggregate_id, gt=result.version - result.events)]
        self._fired(d, run, names, result.position)  # credit on invoices issued: the command (_issuing_command)

    def _apply_credit(self, customer_numbers: list[str], d: Deadline, run: _Run) -> int:
        """Rule book 7: the credit balance of customers just invoiced by a batch pays the new invoices,
        as the scheduler with the deadline that issued them (rule book 13), at the deadline's business
        time (``credit_after_issue``, the step every issuing path takes: idempotent; a failure is kept
        as pending and retried by the next sweeps, ``_retry_credit``). Returns the customers credited."""
        with acting_as(Actor.scheduler(d.kind, d.due_on)):
            results = self.app.credit_after_issue(customer_numbers, jst_start(d.due_on))
        for result in results:
            run.wrote(result.position)
        if results:
            logger.info("%s due %s: credit balance applied for %d customer(s) (rule book 7)", d.kind, d.due_on,
                        len(results))
        return len(results)

    def _retry_credit(self, run: _Run) -> None:
        """Rule book 7: credit steps that failed after invoices were issued (in this process) are tried
        again once per sweep, at most ``CREDIT_RETRIES`` times each (``retry_pending_credit``:
        idempotent), as the scheduler, at the service clock's time."""
        if not self.app.pending_credit:
            return
        now = self.clock.now()
        with acting_as(Actor.scheduler(CREDIT_RETRY, jst_date(now))):
            results = self.app.retry_pending_credit(now)
        run.report.credit_retried += len(results)
        for result in results:
            run.wrote(result.position)
        if results:
            logger.info("credit balance applied on retry for %d customer(s) (rule book 7)", len(results))

    def _fired(self, d: Deadline, run: _Run, event_names: list[str], position: int | None) -> None:
        report = run.report
        report.fired += 1
        report.events += len(event_names)
        report.by_kind[d.kind] += 1
        report.last_due = d.due_on if report.last_due is None else max(report.last_due, d.due_on)
        run.wrote(position)
        fired_logger.info("fired %s for %s %s due %s: %s", d.kind, _label(d), d.aggregate_id, d.due_on,
                          ", ".join(event_names), extra={"fields": {
                              "kind": d.kind, "aggregate_id": str(d.aggregate_id), "due_on": d.due_on.isoformat(),
                              "events": len(event_names)}})

    def _held(self, d: Deadline, run: _Run, refused: RuleViolation) -> None:
        """Rule book 10 and 7: a contractor-data erasure waits while the customer's credit balance is
        owed to them. Listed in the report for an operator (refund it, ``POST
        /v1/customers/{n}/credit/refund``, or let it pay an invoice) and logged once per contract by
        this sweeper; the deadline stays open, so the sweep after the refund erases."""
        run.report.held.append(SweepFailure(d.aggregate_id, d.kind, d.due_on, d.ref,
                                            f"{type(refused).__name__}: {refused}", 1))
        if d.aggregate_id not in self._held_logged:
            self._held_logged.add(d.aggregate_id)
            logger.warning("%s for contract %s due %s is held: the customer's credit balance is owed to them "
                           "(rule book 7, 10); an operator refunds it (customer account %s)", d.kind,
                           d.aggregate_id, d.due_on, refused.refers_to["customer_account"])

    def _noop(self, d: Deadline, run: _Run, why: str) -> None:
        run.consecutive_failures = 0
        run.report.noop += 1
        run.skip.add(d)
        run.noop_seen.add(d)
        logger.debug("%s for %s %s due %s already done: %s", d.kind, _label(d), d.aggregate_id, d.due_on, why)

    def _failed(self, d: Deadline, run: _Run, exc: Exception, attempts: int) -> None:
        error = type(exc).__name__
        if isinstance(exc, DomainError):
            error += f": {exc}"  # domain errors name the rule and carry no personal data
        run.report.failures.append(SweepFailure(d.aggregate_id, d.kind, d.due_on, d.ref, error, attempts))
        run.skip.add(d)
        run.blocked.add(d.aggregate_id)
        logger.error("failed %s for %s %s due %s after %d attempt(s): %s; its later deadlines wait for the next "
                     "run", d.kind, _label(d), d.aggregate_id, d.due_on, attempts, error,
                     exc_info=not isinstance(exc, DomainError), extra={"fields": {
                         "kind": d.kind, "aggregate_id": str(d.aggregate_id), "due_on": d.due_on.isoformat(),
                         "attempts": attempts}})
        run.consecutive_failures += 1
        if run.consecutive_failures >= self.max_consecutive_failures:
            raise _Abort(f"{run.consecutive_failures} failures in a row (last: {error})")

    # -- service discontinuation (Art. 18) ------------------------------------------------------------
    def _discontinue(self, d: Deadline, run: _Run) -> None:
        """End every contract of the service on the date, then mark the discontinuation carried out.

        The contracts come from the read side; to include contracts opened moments ago, it is
        first brought up to the newest event. A contract that cannot be ended leaves the
        discontinuation open, so the next run tries again (the others are then no-ops)."""
        if d.aggregate_id in run.blocked:
            run.skip.add(d)
            return
        self._catch_up_read_models("before listing the contracts of the service", run.report)
        items = [Deadline(d.due_on, d.kind, cid, d.ref) for cid in self._live_contracts_of(d.ref)]
        run.progress.found(len(items))
        failures = len(run.report.failures)
        policy = self.app.policy
        def end(contract: Contract, item: Deadline, book: NumberBook) -> None:
            if contract.service != item.ref:  # Art. 18 ends the contracts of the discontinued service only
                raise RuleViolation("Art. 18", f"the contract is for {contract.service}, not {item.ref}")
            contract.terminate_for_discontinuation(item.due_on, policy)
            contract.settle(item.due_on, policy, book)  # rule book 8: credits with no next invoice are refunded

        self._batched(items, run, end)
        if len(run.report.failures) > failures:
            run.skip.add(d)
            run.blocked.add(d.aggregate_id)
            logger.error("discontinuation of %s due %s stays open: %d contract(s) could not be ended; the next run "
                         "retries", d.ref, d.due_on, len(run.report.failures) - failures)
            return
        self._handle_one(d, run)

    def _live_contracts_of(self, service: str) -> list[uuid.UUID]:
        listing = getattr(self.read_models, "contract_ids", None)
        if callable(listing):
            ids: list[uuid.UUID] = listing(service, LIVE_STATES)
            return ids
        live = []  # slow path (stores without the listing): every contract of the log
        for cid in self.app.iter_aggregate_ids("Contract.Opened"):
            contract = self.app.get_contract(cid)
            if contract.service == service and contract.state.value in LIVE_STATES:
                live.append(cid)
        return live

    # -- batches: many contracts, one transaction ---------------------------------------------------------
    def _batched(self, items: Sequence[Deadline], run: _Run,
                 apply: Callable[[Contract, Deadline, NumberBook], object]) -> None:
        """Load ``batch_size`` contracts, ``apply`` each one's deadline, save them in ONE transaction.

        The invoices the chunk issues draw their numbers from one ``NumberBook``: a contract whose
        deadline fails gives its numbers back before the next one draws, and the sequence entry
        is saved in the chunk's transaction (rule book 6.1: no gap, no reuse).

        A refusal (``RuleViolation``) is a no-op for that contract. Any other error, and a
        concurrent write to any contract of the chunk (``IntegrityError``), sends the contract(s)
        to the one-command-per-contract path, which reloads, retries and reports.

        The next chunk's contracts are read in a thread while this one is renewed and saved (issue
        21: the database's time on the read and on the write no longer adds up). A read ahead is
        used only if nothing but this chunk's own save wrote meanwhile (no contract handled one by
        one, no credit applied: those may touch the next chunk's contracts); otherwise, and if it
        failed, the chunk is read again. Either way the save still finds a concurrent writer."""
        total, done, started = len(items), 0, time.monotonic()
        chunks = list(_chunks(items, self.batch_size))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-read-ahead") as pool:
            ahead: tuple[set[uuid.UUID], Future[dict[uuid.UUID, Contract | Exception]]] | None = None
            for index, chunk in enumerate(chunks):
                run.check_stop()
                for d in chunk:
                    if d.aggregate_id in run.blocked:
                        run.skip.add(d)
                todo = [d for d in chunk if d.aggregate_id not in run.blocked]
                ids = [d.aggregate_id for d in todo]
                contracts = self._read_chunk(chunk[0], ids, ahead)
                ahead = None
                following = chunks[index + 1] if index + 1 < len(chunks) else ()
                next_ids = {d.aggregate_id for d in following if d.aggregate_id not in run.blocked}
                if next_ids and next_ids.isdisjoint(ids):
                    ahead = next_ids, pool.submit(self.app.get_contracts, list(next_ids))
                if self._batch(chunk, todo, contracts, run, apply):
                    ahead = None  # something else wrote: the next chunk is read again
                done += len(chunk)
                run.progress.done(len(chunk), chunk[0].kind, chunk[0].due_on)
                if done % self.progress_every < len(chunk) or done == total and total >= self.progress_every:
                    rate = done / max(time.monotonic() - started, 1e-9)
                    logger.info("%s %s: %d/%d contracts (%.0f/s)", chunk[0].kind, chunk[0].due_on, done, total,
                                rate)

    def _read_chunk(self, first: Deadline, ids: list[uuid.UUID],
                    ahead: tuple[set[uuid.UUID], Future[dict[uuid.UUID, Contract | Exception]]] | None
                    ) -> dict[uuid.UUID, Contract | Exception]:
        """The chunk's contracts: one query for their events (and one for their keys), not one load
        per contract; read ahead if that read covers them and succeeded."""
        if ahead is not None and ahead[0].issuperset(ids):
            try:
                return ahead[1].result()
            except Exception as exc:  # noqa: BLE001 - read again below
                logger.info("%s %s: reading the chunk's %d contracts ahead failed (%s); reading them again",
                            first.kind, first.due_on, len(ids), type(exc).__name__)
        try:
            return self.app.get_contracts(ids)
        except Exception as exc:  # noqa: BLE001 - e.g. the database: one by one, with retries
            logger.info("%s %s: reading the chunk's %d contracts failed (%s); handling them one by one",
                        first.kind, first.due_on, len(ids), type(exc).__name__)
            return {}

    def _batch(self, chunk: Sequence[Deadline], todo: list[Deadline], contracts: dict[uuid.UUID, Contract | Exception],
               run: _Run, apply: Callable[[Contract, Deadline, NumberBook], object]) -> bool:
        """Apply and save one chunk (``_batched``); True if anything but its save wrote (a contract
        handled one by one, a credit balance applied)."""
        loaded: list[tuple[Deadline, Contract]] = []
        single: list[Deadline] = []
        credited = 0
        book = self.app.number_book()
        for d in todo:
            contract = contracts.get(d.aggregate_id)
            if not isinstance(contract, Contract):  # missing or undecodable: reported by the single path
                single.append(d)
                continue
            mark = book.mark()
            try:
                apply(contract, d, book)
            except RuleViolation as refused:
                book.rollback(mark)
                self._noop(d, run, f"refused: {refused}")
            except Exception:  # noqa: BLE001 - handled (retried, reported) one by one below
                book.rollback(mark)
                single.append(d)
            else:
                stamp(contract, Actor.scheduler(d.kind, d.due_on))
                loaded.append((d, contract))
        try:
            sequences = book.close(None) if loaded else []
            recordings = self.app.save(*(c for _, c in loaded), *sequences) if loaded else []
        except IntegrityError:
            logger.info("%s %s: a contract of this chunk changed concurrently; saving the %d contracts one "
                        "by one", chunk[0].kind, chunk[0].due_on, len(loaded))
            single.extend(d for d, _ in loaded)
        else:
            names: dict[uuid.UUID, list[str]] = {}
            for recording in recordings:
                oid = recording.domain_event.originator_id  # a UUID already (this process's own events)
                names.setdefault(oid if isinstance(oid, uuid.UUID) else uuid.UUID(str(oid)), []).append(
                    type(recording.domain_event).__name__)
            position = recordings[-1].notification.id if recordings else None
            invoiced: list[str] = []
            for d, contract in loaded:
                event_names = names.get(d.aggregate_id)
                if event_names:
                    run.consecutive_failures = 0
                    self._fired(d, run, event_names, position)
                    if ISSUED in event_names:
                        invoiced.append(contract.customer_number)
                else:
                    self._noop(d, run, "nothing to do (month already run)")
            if invoiced:
                credited = self._apply_credit(invoiced, chunk[0], run)
        for d in sorted(single, key=_sort_key):
            self._handle_one(d, run)
        return bool(single or credited)

def _label(d: Deadline) -> str:
    if d.kind == TERMS_CHANGE_EFFECTIVE.name:
        return "terms change"
    if d.kind == DISCONTINUATION.name and d.aggregate_id == ServiceDiscontinuation.create_id(d.ref):
        return "discontinuation"
    return "contract"

