"""The cyclic garbage collector relaxed while a bulk job runs (issue 21).

A rebuild or a month start allocates millions of short-lived, acyclic objects (decoded events,
folded states), freed by reference counting; at the default thresholds (a young collection every
700 allocations) the collector's passes cost 15-20 % of their CPU. ``relaxed_collector`` raises the
young threshold for the duration. The thresholds are the process's: overlapping jobs (a sweep and
a rebuild in one process) share one raise, and the first job's thresholds come back when the last
one ends, whether it succeeded or failed.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_holders = 0
_restore: tuple[int, ...] = ()


@contextlib.contextmanager
def relaxed_collector(young: int = 100_000) -> Iterator[None]:
    """Collect young objects every ``young`` allocations (at least) until the block ends."""
    global _holders, _restore
    with _lock:
        if _holders == 0:
            _restore = gc.get_threshold()
        _holders += 1
        current = gc.get_threshold()
        gc.set_threshold(max(current[0], young), *current[1:])
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.set_threshold(*_restore)


def resting_thresholds() -> tuple[int, ...]:
    """The thresholds outside every bulk job: what comes back when the last one ends. A reading of
    ``gc.get_threshold()`` while another thread's job runs (a projection runner's batch) is the
    relaxed one."""
    with _lock:
        return _restore if _holders else gc.get_threshold()
