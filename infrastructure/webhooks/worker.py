"""The webhook worker: derives the queue from the event stream and delivers it, until stopped.

One loop, two duties: a batch of the event stream becomes queue rows (``QueueDeriver``), and up
to ``concurrency`` due rows are in flight at once, one in each long-lived sender thread
(``Deliverer``), so a receiver that hangs holds one slot for the sender's timeout and never the others. A recorder
stores the outcomes of the attempts that finished meanwhile in one transaction
(group commit: one commit for many deliveries, in a thread of its own). Database
errors (a restart, a lost connection, a locked SQLite file) are retried with back-off, forever.
It runs in ``contracts serve`` (SQLite default) or as ``contracts webhooks run`` (PostgreSQL);
several processes are safe: the deriver's batches are checked against the tracking position and
the senders lease rows (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from application.notifications.delivery import Deliverer, Outcome
from application.notifications.ports import Claimed
from application.notifications.queue import QueueDeriver
from application.projections.ports import StalePosition
from infrastructure.metrics import WEBHOOK_DELIVERIES
from infrastructure.read_side import TRANSIENT

log = logging.getLogger("contracts.webhooks")


class WebhookWorker:
    def __init__(self, deriver: QueueDeriver, deliverer: Deliverer, *, concurrency: int = 8,
                 poll_interval: float = 0.2, max_backoff: float = 5.0) -> None:
        self.deriver, self.deliverer = deriver, deliverer
        self.concurrency, self.poll_interval, self.max_backoff = max(1, concurrency), poll_interval, max_backoff
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._more = False  # the last derived batch was full: derive again without waiting

    def kick(self) -> None:
        """Look for work now (a command just stored events, an operator asked for a redelivery)."""
        self._kick.set()

    def run_forever(self, stop: threading.Event) -> None:
        backoff = 0.1
        recorder = _Recorder(self.deliverer, self.max_backoff)
        senders = _Senders(self, recorder)
        last_derive = 0.0
        recorder.start()
        senders.start()
        try:
            while not stop.is_set():
                derived = 0
                senders.freed.clear()  # before looking: a slot freed from now on wakes the wait below
                try:
                    now = time.monotonic()
                    if self._kick.is_set() or now - last_derive >= self.poll_interval or self._more:
                        self._kick.clear()
                        derived = self.deriver.run_once()
                        self._more = derived >= self.deriver.batch_size
                        last_derive = now
                    outstanding = senders.outstanding()
                    if len(outstanding) < self.concurrency:
                        keys = outstanding | recorder.pending()
                        fresh = self.deliverer.claim(2 * self.concurrency - len(outstanding))
                        self.deliverer.prefetch(fresh)
                        senders.submit([c for c in fresh if self._key(c) not in keys])
                except StalePosition as exc:
                    log.info("webhook queue batch superseded (%s)", exc)
                    continue
                except TRANSIENT as exc:
                    log.warning("webhook worker: database unavailable (%s); retrying in %.1fs",
                                type(exc).__name__, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                except Exception:
                    log.exception("webhook worker failed; retrying in %.1fs", backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                backoff = 0.1
                if derived and self._more:
                    continue
                if senders.busy():
                    senders.freed.wait(self.poll_interval)  # until a slot frees up (or new work is due)
                else:
                    self._kick.wait(self.poll_interval)
        finally:
            senders.close(timeout=30)
            recorder.close()

    @staticmethod
    def _key(claimed: Claimed) -> tuple[object, object]:
        return claimed.row.endpoint_id, claimed.row.notification_id

    def _attempt(self, claimed: Claimed, recorder: _Recorder) -> None:
        """One attempt, in a sender thread, and its outcome stored by the recorder with those of the
        other threads (none: not sent, the lease expires or was released)."""
        try:
            outcome = self.deliverer.attempt(claimed)
        except TRANSIENT as exc:  # before sending: the lease expires and the row is taken again
            log.warning("notification %s not sent (%s)", claimed.row.notification_id, type(exc).__name__)
            WEBHOOK_DELIVERIES.labels("error").inc()
            return
        except Exception:
            log.exception("delivering notification %s failed", claimed.row.notification_id)
            WEBHOOK_DELIVERIES.labels("error").inc()
            return
        if outcome is not None:
            stored = recorder.put(claimed, outcome)
            if recorder.backlog() > self.concurrency:  # back-pressure: a crash repeats at most the attempts in
                stored.wait()                          # flight and ``concurrency`` outcomes not stored yet

    # -- in a thread of this process ---------------------------------------------------------------
    def start_in_thread(self) -> threading.Thread:
        if self._thread is None or not self._thread.is_alive():
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self.run_forever, args=(self._stop,), name="webhooks",
                                            daemon=True)
            self._thread.start()
        return self._thread

    def stop_thread(self, timeout: float = 15.0) -> None:
        if self._thread is not None:
            self._stop.set()
            self._kick.set()
            self._thread.join(timeout)
            self._thread = None


class _Senders:
    """``concurrency`` long-lived sender threads taking leased rows from one queue, instead of a
    thread pool's future per attempt and a ``wait`` over every future in flight per freed slot (its
    waiter installed on each: issue 21, -18 % of the worker's CPU per notification). The main loop
    hands over at most ``2 x concurrency`` rows at once; ``freed`` is set whenever one is done."""

    def __init__(self, worker: WebhookWorker, recorder: _Recorder) -> None:
        self.worker, self.recorder = worker, recorder
        self.freed = threading.Event()
        self._todo: queue.SimpleQueue[Claimed | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._outstanding: dict[tuple[object, object], Claimed] = {}  # handed over, outcome not yet queued
        self._threads = [threading.Thread(target=self._run, name=f"webhook-send-{i}", daemon=True)
                         for i in range(worker.concurrency)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, claimed: list[Claimed]) -> None:
        with self._lock:
            for c in claimed:
                self._outstanding[WebhookWorker._key(c)] = c
        for c in claimed:
            self._todo.put(c)

    def outstanding(self) -> set[tuple[object, object]]:
        """Rows handed over whose outcome the recorder does not have yet (sending or waiting to)."""
        with self._lock:
            return set(self._outstanding)

    def busy(self) -> bool:
        with self._lock:
            return bool(self._outstanding)

    def close(self, timeout: float) -> None:
        """Rows not started are left to their leases; the attempts under way finish (bounded)."""
        while True:
            try:
                left = self._todo.get_nowait()
            except queue.Empty:
                break
            if left is not None:
                with self._lock:
                    self._outstanding.pop(WebhookWorker._key(left), None)
        for _ in self._threads:
            self._todo.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while (claimed := self._todo.get()) is not None:
            try:
                self.worker._attempt(claimed, self.recorder)
            finally:
                with self._lock:
                    self._outstanding.pop(WebhookWorker._key(claimed), None)
                self.freed.set()


class _Recorder:
    """Stores attempt outcomes in a thread of its own: every outcome that arrived while the last
    transaction committed goes into the next one (group commit), and the senders go on sending
    meanwhile while at most ``concurrency`` outcomes wait (then they wait for theirs).
    A contract's next notification becomes claimable once its predecessor's outcome is stored. A
    lost database delays an outcome (retried with back-off), never drops it; on ``close`` what
    cannot be stored is left to the leases (sent again once they expire, with the same ids)."""

    def __init__(self, deliverer: Deliverer, max_backoff: float) -> None:
        self.deliverer, self.max_backoff = deliverer, max_backoff
        self._lock = threading.Condition()
        self._queue: list[tuple[Claimed, Outcome, threading.Event]] = []
        self._storing: list[tuple[Claimed, Outcome, threading.Event]] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="webhook-record", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, claimed: Claimed, outcome: Outcome) -> threading.Event:
        """Queue an outcome; the event is set once it is stored (or left to its lease)."""
        done = threading.Event()
        with self._lock:
            self._queue.append((claimed, outcome, done))
            self._lock.notify()
        return done

    def backlog(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._storing)

    def pending(self) -> set[tuple[object, object]]:
        """Rows sent whose outcome is not stored yet (not to be claimed again meanwhile)."""
        with self._lock:
            return {WebhookWorker._key(c) for c, _, _ in (*self._storing, *self._queue)}

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.2
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._lock.wait()
                if not self._queue:
                    return
                self._storing, self._queue = self._queue, []
            batch = [(claimed, outcome) for claimed, outcome, _ in self._storing]
            while True:
                try:
                    self.deliverer.record_many(batch)
                except TRANSIENT as exc:
                    if self._closing:
                        log.warning("webhook worker stopping: %d delivery outcomes not stored (%s); they are sent "
                                    "again once their leases expire", len(batch), type(exc).__name__)
                        break
                    log.warning("storing %d delivery outcomes failed (%s); retrying in %.1fs", len(batch),
                                type(exc).__name__, backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                except Exception:
                    log.exception("storing %d delivery outcomes failed; their rows are sent again once their "
                                  "leases expire (same notification ids)", len(batch))
                    break
                for _, outcome in batch:
                    WEBHOOK_DELIVERIES.labels("delivered" if outcome.ok else "not_delivered").inc()
                backoff = 0.2
                break
            with self._lock:
                for _, _, done in self._storing:
                    done.set()
                self._storing = []
