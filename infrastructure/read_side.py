"""The read side: projection runner and the ``ReadModels`` implementation over the read store.

``infrastructure.bootstrap.build_read_models(services)`` gives a ``ReadModelsImpl`` whose ``runner`` follows the
application's notification log by polling ``select_notifications`` (works on SQLite, which has
no subscriptions, and on PostgreSQL). Each batch's rows and tracking position are committed in
one transaction, so a crash (even ``kill -9``) never double-counts or loses an event: a
restarted runner resumes from the stored position. Database errors (a lost connection, a
locked SQLite file) are retried with backoff, forever, without a manual restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, Notification, OperationalError, PersistenceError

from application.clock import Clock
from application.collector import relaxed_collector
from application.invoice_search import CounterpartyIndex
from application.projections.ports import (
    Changes,
    DamagedRow,
    DeadlineRow,
    ReadStore,
    RebuildInProgress,
    StalePosition,
)
from application.projections.projector import Projector
from application.read_models import ContractSummary, Deadline
from application.service import ContractsApplication
from application.undecodable import UndecodableEvent, decode_event
from domain.billing import Invoice
from domain.calendar import Month, jst_date
from domain.contract import Contract
from domain.errors import NotFound
from infrastructure.personal_data import prefetch_keys_of
from infrastructure.position_watcher import PositionWatcher
from infrastructure.read_store.pipelined import PipelinedWriter

log = logging.getLogger("contracts.projections")
ISSUED_SUFFIX = "Contract.InvoiceIssued"
_WATCHER_LOCK = threading.Lock()

TRANSIENT = (OperationalError, InterfaceError, PersistenceError, psycopg.OperationalError, psycopg.InterfaceError,
             sqlite3.OperationalError, StalePosition)


class ProjectionRunner:
    """Applies the notification log to the read store, batch by batch, exactly once."""

    def __init__(self, app: ContractsApplication, store: ReadStore, projector: Projector, *,
                 batch_size: int = 500, poll_interval: float = 0.2, max_backoff: float = 5.0,
                 rebuild_processes: int = 1, worker_recipe: Callable[[], ProjectionRunner] | None = None) -> None:
        self.app, self.store, self.projector = app, store, projector
        self.batch_size, self.poll_interval, self.max_backoff = batch_size, poll_interval, max_backoff
        # a rebuild's worker processes, and how each builds its own runner over the same database
        # (picklable: ``infrastructure.bootstrap.rebuild_worker_recipe``; None: one process only)
        self.rebuild_processes, self.worker_recipe = rebuild_processes, worker_recipe
        self.worker_peaks_mib: list[float] = []  # the last split rebuild's workers' peak memory
        self._position: int | None = None  # committed position as far as this runner knows
        self._lock = threading.RLock()  # one batch at a time in this process
        self._progress = threading.Condition()
        self._kick = threading.Event()
        self._thread: RunnerThread | None = None

    # -- one batch ---------------------------------------------------------------------------------
    def run_once(self, limit: int | None = None) -> int:
        """Apply the next batch (up to ``limit`` events); return how many events it had."""
        with self._lock:
            if self._position is None:
                self._position = self.store.position()
            start = self._position
            notifications = self.app.recorder.select_notifications(start=start + 1, limit=limit or self.batch_size)
            if not notifications:
                return 0
            try:
                with relaxed_collector(REBUILD_GC_THRESHOLD):  # ~10-17 % of a batch's CPU otherwise (issue 21)
                    changes = self.projector.process(self._decoded(notifications), self.store)
                    self.store.commit(changes, start, notifications[-1].id)
            except BaseException:
                self.projector.reset()  # cached states may be ahead of what was committed
                self._position = None
                raise
            self._position = notifications[-1].id
            _log_damaged(changes)
        with self._progress:
            self._progress.notify_all()
        return len(notifications)

    def _decoded(self, notifications: Sequence[Notification]) -> list[tuple[int, Any]]:
        # The one personal field a projection reads is an issued invoice's recipient, opened to
        # compute its counterparty blind index (rule book 13; the name itself is never written
        # to a read table): their keys are read once per batch, the records keys only (the recipient
        # is sealed with it; issue 21: the contacts keys were half the rows read and unwrapped).
        issued = [n for n in notifications if n.topic.endswith(ISSUED_SUFFIX)]
        if issued:
            prefetch_keys_of(getattr(self.app.mapper, "keys", None), issued, contacts=False)
        return [(n.id, self._decode(n)) for n in notifications]

    def _decode(self, n: Notification) -> Any:
        """The domain event, or the ``UndecodableEvent`` the projector records and stops its aggregate
        at (issue 14). Personal fields stay sealed (the library's decoding): projections never read
        them, and opening them cost a key read per contract (2/3 of a rebuild's time; issue 7), except an
        issued invoice's recipient (its counterparty blind index)."""
        try:
            return decode_event(self.app.mapper, n, position=n.id, open_sealed=n.topic.endswith(ISSUED_SUFFIX))
        except UndecodableEvent as damaged:
            return damaged

    def catch_up(self) -> int:
        """Apply every event recorded so far (tests, CLI)."""
        total = 0
        while n := self.run_once():
            total += n
        return total

    def position(self) -> int:
        with self._lock:
            if self._position is None:
                self._position = self.store.position()
            return self._position

    def kick(self) -> None:
        """Poll now instead of at the end of the current interval (read-your-writes)."""
        self._kick.set()

    def wait_progress(self, timeout: float) -> None:
        with self._progress:
            self._progress.wait(timeout)

    # -- forever -----------------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; survive database outages with exponential backoff."""
        backoff = 0.1
        while not stop.is_set():
            try:
                n = self.run_once()
            except StalePosition as exc:  # another runner got there first: re-read and go on
                log.info("projection batch superseded (%s)", exc)
                continue
            except TRANSIENT as exc:
                log.warning("projection batch failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except Exception:
                log.exception("projection batch failed; retrying in %.1fs", backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.1
            if n == 0:
                self._idle(stop)

    def _idle(self, stop: threading.Event) -> None:
        """Wait for new events: a NOTIFY on PostgreSQL, a kick from ``wait_for`` in this process,
        or the poll interval, whichever comes first."""
        waiter = getattr(self.store, "wait_for_events", None)
        channel = getattr(self.app.recorder, "channel_name", None)
        if waiter is not None and channel and not self._kick.is_set():
            waiter(channel, self.poll_interval)
        else:
            self._kick.wait(self.poll_interval)
        self._kick.clear()

    def start_in_thread(self) -> RunnerThread:
        if self._thread is None or not self._thread.is_alive():
            self._thread = RunnerThread(self)
            self._thread.start()
        return self._thread

    @property
    def running_in_thread(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop_thread(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._thread.stop(timeout)
            self._thread = None
        closer = getattr(self.store, "close_listener", None)
        if closer is not None:
            closer()

    # -- rebuild -----------------------------------------------------------------------------------
    rebuild_split_from = 20_000  # fewer events: one process (a worker process takes ~1 s to start)

    def rebuild(self, progress: bool = True, batch_size: int = 5000, processes: int | None = None) -> int:
        """Replay the whole notification log (up to its last position when the rebuild starts) into new
        tables beside the live ones, then swap them in in one transaction (tqdm progress bar). The live
        tables serve reads throughout; if the rebuild fails they are left exactly as they were and
        ``RebuildFailed`` says where it stopped (issue 14). Each batch is committed (with the shadow's
        tracking position) on a writer thread while the next one is folded (``PipelinedWriter``).

        With ``rebuild_processes`` > 1 (``Settings.rebuild_processes``) and a log of at least
        ``rebuild_split_from`` events, or ``processes`` > 1 given, worker processes share the
        aggregates between them (this one and ``processes`` - 1 spawned ones) and write the same shadow
        tables (``infrastructure.rebuild_split``, issue 21); the swap waits for all of them and installs
        the position each one reached. Only one rebuild of the same tables runs at a time (the store's
        ``rebuilding`` lock): a second one, in any process, fails at once with ``RebuildFailed``."""
        try:
            with self.store.rebuilding():  # a second rebuild would fill and drop the same shadow tables
                return self._rebuild(progress, batch_size, processes)
        except RebuildInProgress as exc:
            raise RebuildFailed(f"rebuild refused: {exc}; the live read tables are unchanged") from None

    def _rebuild(self, progress: bool, batch_size: int, processes: int | None) -> int:
        from tqdm import tqdm

        last = self.app.recorder.max_notification_id() or 0
        if processes is None:
            processes = self.rebuild_processes if last >= self.rebuild_split_from else 1
        split = processes > 1 and self.worker_recipe is not None and last > 0
        shadow = self.store.shadow()
        reached = [0]
        try:
            with tqdm(total=last, disable=not progress, unit="ev", desc="rebuild read models", smoothing=0.1) as bar:
                if split:
                    from infrastructure.rebuild_split import split_rebuild

                    assert self.worker_recipe is not None
                    result = split_rebuild(self, self.worker_recipe, shadow, processes, last, batch_size,
                                           committed=_progress(bar, reached))
                    applied, self.worker_peaks_mib = result.applied, result.peaks_mib
                else:
                    self.worker_peaks_mib = []
                    applied = self.replay(shadow, last, batch_size, committed=_progress(bar, reached))
            with self._lock:
                try:
                    self.store.replace_with(shadow)
                finally:
                    self.projector.reset()
                    self._position = None
        except Exception as exc:
            with contextlib.suppress(Exception):
                shadow.drop()
            raise RebuildFailed(f"rebuild stopped after position {reached[0]} of {last} "
                                f"({type(exc).__name__}); the live read tables are unchanged") from exc
        with self._progress:
            self._progress.notify_all()
        return applied

    def replay(self, shadow: ReadStore, stop: int, batch_size: int = 5000,
               share: Callable[[Notification], bool] | None = None,
               committed: Callable[[Changes, int], None] | None = None,
               read: Callable[[int, int, int], Sequence[Notification]] | None = None,
               cancel: threading.Event | None = None) -> int:
        """Fold the log from its start up to position ``stop`` into ``shadow`` with a fresh projector,
        each batch one transaction (on a writer thread) moving ``shadow``'s position to the batch's
        last notification, and at last to ``stop``. Only the notifications ``share`` accepts (all
        without it) are decoded and applied; ``read(start, limit, stop)`` reads those alone (instead of
        the recorder's ``select_notifications``). Returns how many were applied;
        ``committed(changes, position)`` after each commit; ``cancel`` set: stop before the next batch."""
        projector = Projector(self.projector.policy, self.projector.cache_size, self.projector.counterparty_index)
        writer = PipelinedWriter(shadow, committed=committed)
        source = writer.source()
        applied = position = 0
        try:
            with relaxed_collector(REBUILD_GC_THRESHOLD):
                while position < stop:
                    if cancel is not None and cancel.is_set():
                        raise RebuildFailed("another part of the rebuild failed")
                    if read is not None:
                        notifications = mine = read(position + 1, batch_size, stop)
                    else:
                        notifications = self.app.recorder.select_notifications(start=position + 1, limit=batch_size,
                                                                               stop=stop)
                        mine = notifications if share is None else [n for n in notifications if share(n)]
                    if not notifications:
                        break
                    changes = projector.process(self._decoded(mine), source)
                    writer.submit(changes, position, notifications[-1].id)
                    position = notifications[-1].id
                    applied += len(mine)
                if position < stop:  # the last events were others' (or the log has a gap at its end)
                    writer.submit(Changes(), position, stop)
                writer.flush()
            writer.close()
        except BaseException:
            writer.abort()
            raise
        return applied


def _progress(bar: Any, reached: list[int]) -> Callable[[Changes, int], None]:
    """After each committed batch: its damaged events logged, the bar moved to its position (with
    several parts, the position all of them passed)."""
    def committed(changes: Changes, position: int) -> None:
        _log_damaged(changes)
        if position > reached[0]:
            bar.update(position - reached[0])
            reached[0] = position
    return committed


def _log_damaged(changes: Changes) -> None:
    for damaged in changes.damaged:
        log.warning("projections: event at position %d (aggregate %s version %d) not applied: %s",
                    damaged.position, damaged.aggregate_id, damaged.version, damaged.reason)


REBUILD_GC_THRESHOLD = 100_000  # allocations between young collections while a rebuild or a batch runs (default 700)


class RebuildFailed(RuntimeError):
    """A rebuild that did not finish: nothing was swapped in."""


class RunnerThread(threading.Thread):
    def __init__(self, runner: ProjectionRunner) -> None:
        super().__init__(name="projection-runner", daemon=True)
        self.runner = runner
        self.stop_event = threading.Event()

    def run(self) -> None:
        self.runner.run_forever(self.stop_event)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.runner.kick()
        self.join(timeout)


@dataclass
class ReadModelsImpl:
    """``application.read_models.ReadModels`` over the read store, plus as-of queries."""

    app: ContractsApplication
    store: ReadStore
    runner: ProjectionRunner
    clock: Clock
    in_process: bool = True  # run the projections in this process on ``start()`` (embedded default)
    snapshots: Any = None  # infrastructure.snapshots.SnapshotStore (PostgreSQL): fast as-of replays (issue 7)
    watcher: PositionWatcher | None = None  # the shared position poll when the runner is another process
    counterparty_index: CounterpartyIndex | None = None  # blind index of recipient names (invoice search)

    # -- progress ----------------------------------------------------------------------------------
    def position(self) -> int:
        return self.store.position()

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """Until the read models have processed ``position`` (False after ``timeout`` seconds). With
        the runner in another process, every waiter of this process shares one poll of the position."""
        if not self.runner.running_in_thread:
            return self._watcher().wait_for(position, timeout)
        deadline = time.monotonic() + timeout
        while True:
            if self.store.position() >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.runner.kick()
            self.runner.wait_progress(min(remaining, 0.05))

    def _watcher(self) -> PositionWatcher:
        with _WATCHER_LOCK:
            if self.watcher is None:
                self.watcher = PositionWatcher(self.store.position,
                                               listen=getattr(self.store, "listen_positions", None),
                                               announced=getattr(self.store, "wait_position", None))
            return self.watcher

    def start_runner(self) -> RunnerThread:
        """Run the projections in a thread of this process."""
        return self.runner.start_in_thread()

    def start(self) -> None:
        """Background work of an API process: the runner thread when ``in_process`` (SQLite by
        default; with PostgreSQL run ``contracts projections run`` as its own process)."""
        if self.in_process:
            self.start_runner()

    def stop(self) -> None:
        self.runner.stop_thread()

    close = stop

    def damaged_events(self) -> list[DamagedRow]:
        """Stored events the projections could not decode, and the later events of their aggregates
        they therefore did not apply (issue 14)."""
        return self.store.damaged_events()

    # -- billing (spec 6, Art. 9) --------------------------------------------------------------------
    def invoices(self, contract_id: uuid.UUID, as_of: datetime | None = None, *,
                 interest_on: date | None = None) -> list[dict[str, Any]]:
        """Invoices with lines, payments, outstanding and late interest. ``as_of``: as recorded by
        that instant, interest as of its JST date; ``interest_on`` overrides the interest date."""
        if as_of is not None:
            return self.invoices_as_of(contract_id, at=as_of, interest_on=interest_on or jst_date(as_of))
        return self._render(self.store.invoices_of(contract_id), interest_on)

    def invoices_for_month(self, month: Month, *, interest_on: date | None = None, limit: int | None = None,
                           after: uuid.UUID | None = None) -> list[dict[str, Any]]:
        """A month's invoices; with ``limit``, one page in invoice id order after ``after``."""
        return self._render(self.store.invoices_in_month(str(month), limit=limit, after=after), interest_on)

    def _render(self, invoices: list[Invoice], interest_on: date | None) -> list[dict[str, Any]]:
        day = interest_on or jst_date(self.clock.now())
        rate = self.app.policy.late_interest_rate
        return [invoice.to_dict() | {"late_interest": invoice.late_interest(day, rate),
                                     "interest_as_of": day.isoformat()} for invoice in invoices]

    def invoice(self, invoice_id: uuid.UUID) -> Invoice:
        """One issued invoice or credit note as issued, with its recipient (from the contract's
        events: the read table never holds the name); raises ``NotFound``."""
        row = self.store.invoice(invoice_id)
        if row is None:
            raise NotFound("rule book 6.1", f"no invoice {invoice_id}", "invoice_id")
        contract = self.app.get_contract(row.contract_id)
        invoice = contract.ledger.invoices.get(invoice_id)
        if invoice is None:  # the read side is ahead of nothing: only a stale cache could get here
            raise NotFound("rule book 6.1", f"no invoice {invoice_id}", "invoice_id")
        return invoice

    def render_invoice(self, invoice: Invoice, interest_on: date | None = None) -> dict[str, Any]:
        return self._render([invoice], interest_on)[0]

    def search_invoices(self, *, issued_from: date | None = None, issued_to: date | None = None,
                        amount_min: int | None = None, amount_max: int | None = None,
                        counterparty: str | None = None, after: tuple[date, str] | None = None,
                        limit: int = 100) -> list[dict[str, Any]]:
        """Electronic Bookkeeping Act search (rule book 13): issue-date and amount ranges and the
        counterparty's name (matched through its blind index), alone or combined."""
        key = None
        if counterparty is not None:
            if self.counterparty_index is None:
                return []
            key = self.counterparty_index(counterparty)
        found = self.store.search_invoices(issued_from=issued_from, issued_to=issued_to, amount_min=amount_min,
                                           amount_max=amount_max, counterparty=key, after=after, limit=limit)
        return self._render(found, None)

    def outstanding(self, contract_id: uuid.UUID) -> int:
        return sum(i.outstanding for i in self.store.invoices_of(contract_id))

    # -- outage credits (spec 8, Art. 20, 21) -----------------------------------------------------------
    def claims(self, contract_id: uuid.UUID) -> list[dict[str, Any]]:
        docs = [json.loads(doc) for doc in self.store.claims_of(contract_id)]
        return sorted(docs, key=lambda d: (d["received_on"], d["claim_id"]))

    def liability_cap(self, contract_id: uuid.UUID, month: Month) -> int:
        """Art. 21.1: one month's fee of ``month`` (annual: total / 12); zero for trials and beta."""
        from application.projections.state import ContractProjection

        doc = self.store.state_doc(contract_id)
        return 0 if doc is None else ContractProjection.from_json(doc).liability_cap(month)

    # -- deadlines -------------------------------------------------------------------------------------
    def deadlines_until(self, until: date, limit: int | None = None,
                        after: Deadline | None = None) -> list[Deadline]:
        cursor = None if after is None else DeadlineRow(after.due_on, after.kind, after.aggregate_id, after.ref)
        return [Deadline(r.due_on, r.kind, r.aggregate_id, r.ref)
                for r in self.store.deadlines_until(until, limit, cursor)]

    def deadlines_on(self, day: date, kind: str, limit: int) -> list[Deadline]:
        return [Deadline(r.due_on, r.kind, r.aggregate_id, r.ref) for r in self.store.deadlines_on(day, kind, limit)]

    def search_contracts(self, *, customer_number: str | None = None, service: str | None = None,
                         states: tuple[str, ...] = (), limit: int = 50, after: uuid.UUID | None = None,
                         customer_prefix: str | None = None) -> list[ContractSummary]:
        return [ContractSummary(r.contract_id, r.customer_number, r.service, r.state, r.version)
                for r in self.store.search_contracts(customer_number, service, states, limit, after,
                                                     customer_prefix)]

    def contract_ids(self, service: str | None = None, states: tuple[str, ...] = ()) -> list[uuid.UUID]:
        """Contracts known to the read side, optionally of one service and in given states."""
        return self.store.contract_ids(service, states)

    def unapplied_transfer_ids(self, limit: int | None = None) -> list[uuid.UUID]:
        """Rule book 7: the transfers kept as unapplied (payer unknown), oldest value date first,
        from the transfers table (``application.projections.transfers``)."""
        return self.store.unapplied_transfers(limit)

    def claim_contract(self, claim_id: uuid.UUID) -> uuid.UUID | None:
        """The contract an SLA claim belongs to (None if the read side does not know the claim)."""
        return self.store.claim_contract(claim_id)

    # -- as of a past moment (auditors) ------------------------------------------------------------------
    def version_at(self, aggregate_id: uuid.UUID, at: datetime | None = None, position: int | None = None) -> int:
        """Last version of the aggregate recorded by instant ``at`` (event timestamps) or by
        notification ``position``; 0 if it did not exist yet (as far as the projection has read)."""
        if at is None and position is None:
            raise ValueError("give at or position")
        return self.store.version_at(aggregate_id, at, position) or 0

    def contract_as_of(self, contract_id: uuid.UUID, at: datetime | None = None,
                       position: int | None = None) -> Contract | None:
        """The contract as it stood at instant ``at`` (by recorded time) or as known at notification
        ``position``; ``None`` if it did not exist yet. Without either: the current state."""
        if at is None and position is None:
            return self.app.get_contract(contract_id)
        if self.snapshots is not None and at is not None and position is None:  # one query (issue 7)
            at_contract: Contract | None = self.snapshots.contract_at(contract_id, at)
            return at_contract
        version = self.version_at(contract_id, at, position)
        if version == 0:
            return None
        if self.snapshots is not None:  # nearest snapshot + the events after it (issue 7)
            contract: Contract | None = self.snapshots.get_contract(contract_id, version)
            if contract is not None:
                return contract
        return self.app.get_contract(contract_id, version=version)

    def invoices_as_of(self, contract_id: uuid.UUID, at: datetime | None = None, position: int | None = None,
                       interest_on: date | None = None) -> list[dict[str, Any]]:
        contract = self.contract_as_of(contract_id, at, position)
        if contract is None:
            return []
        invoices = sorted(contract.ledger.invoices.values(), key=lambda i: (i.month, i.kind, i.period))
        day = interest_on or (jst_date(at) if at is not None else None)
        return self._render(invoices, day)
