"""One poll of the read models' position per process, shared by every waiter (read-your-writes
and the sweep, when the projection runner is another process: ``contracts projections run``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class PositionWatcher:
    """One thread of this process reads the read models' position every ``interval`` seconds while
    anybody waits, and wakes those whose position was reached: fewer queries than each waiter
    polling the database on its own, with many requests in flight, and a finer grain. The thread
    sleeps while nobody waits. A failed read is raised in the waiters of that moment."""

    def __init__(self, read_position: Callable[[], int], interval: float = 0.004) -> None:
        self._read, self.interval = read_position, interval
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
            with self._cond:
                if position > self._known:
                    self._known = position
                    self._cond.notify_all()
            time.sleep(self.interval)
