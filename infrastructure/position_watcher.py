"""One watch of the read models' position per process, shared by every waiter (read-your-writes
and the sweep, when the projection runner is another process: ``contracts projections run``).

Where the read store announces its position (PostgreSQL: the runner NOTIFYs it in each batch's
transaction, issue 21), the watcher LISTENs and wakes the waiters from the announcement, with no
query and no polling; a read of the position every ``fallback`` seconds covers a lost
announcement or connection. Elsewhere (SQLite) it polls every ``interval`` seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class PositionWatcher:
    """One thread of this process reads the read models' position every ``interval`` seconds while
    anybody waits, and wakes those whose position was reached: fewer queries than each waiter
    polling the database on its own, with many requests in flight, and a finer grain. The thread
    sleeps while nobody waits. A failed read is raised in the waiters of that moment."""

    def __init__(self, read_position: Callable[[], int], interval: float = 0.004, *,
                 listen: Callable[[], None] | None = None,
                 announced: Callable[[float], int | None] | None = None, fallback: float = 0.5) -> None:
        self._read, self.interval = read_position, interval
        self._listen, self._announced, self.fallback = listen, announced, fallback
        self._listening = False
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._known = 0
        self._waiters = 0
        self._failures = 0
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.reads = 0

    def wait_for(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._known >= position:
                return True
            failures = self._failures
            self._waiters += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="read-models-watcher", daemon=True)
                self._thread.start()
            self._wake.set()
            try:
                while self._known < position:
                    if self._failures != failures and self._failure is not None:
                        raise self._failure
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._waiters -= 1

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._cond:
                if self._waiters == 0:
                    self._wake.clear()
                    continue
            self._start_listening()
            try:
                position = self._read()
                self.reads += 1
            except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
                with self._cond:
                    self._failures += 1
                    self._failure = exc
                    self._cond.notify_all()
                time.sleep(0.05)
                continue
            self._reached(position)
            if self._listening:
                self._follow_announcements()
            else:
                time.sleep(self.interval)

    def _reached(self, position: int) -> None:
        with self._cond:
            if position > self._known:
                self._known = position
                self._cond.notify_all()

    def _start_listening(self) -> None:
        """Before a read of the position: an announcement after that read is then never missed."""
        if self._listen is None or self._announced is None or self._listening:
            return
        try:
            self._listen()
            self._listening = True
        except Exception:  # noqa: BLE001 - polling still works
            self._listening = False

    def _follow_announcements(self) -> None:
        """Wake the waiters from announced positions while anybody waits; back to a read of the
        position after ``fallback`` seconds without one, or when the connection fails."""
        assert self._announced is not None
        while True:
            with self._cond:
                if self._waiters == 0:
                    return
            try:
                position = self._announced(self.fallback)
            except Exception:  # noqa: BLE001 - the next round reads the position and listens again
                self._listening = False
                return
            if position is None:
                return
            self._reached(position)
