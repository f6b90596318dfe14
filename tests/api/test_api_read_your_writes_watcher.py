"""``api.context.PositionWatcher``: read-your-writes when the projection runner is another process
(one shared poll of the read models' position per API process instead of one per waiting request)."""

from __future__ import annotations

import threading
import time

import pytest

from api.context import PositionWatcher


class Position:
    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.fail: Exception | None = None

    def __call__(self) -> int:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return self.value


def test_waits_until_the_position_is_reached_and_times_out_otherwise() -> None:
    pos = Position()
    watcher = PositionWatcher(pos, interval=0.001)
    assert watcher.wait_for(5, timeout=0.05) is False
    threading.Timer(0.05, lambda: setattr(pos, "value", 7)).start()
    t0 = time.monotonic()
    assert watcher.wait_for(6, timeout=2.0) is True
    assert time.monotonic() - t0 < 1.0
    reads = pos.reads
    assert watcher.wait_for(7, timeout=0.0) is True  # known already: no read, no wait
    assert pos.reads == reads


def test_many_waiters_share_one_poll_and_the_thread_rests_without_waiters() -> None:
    pos = Position()
    watcher = PositionWatcher(pos, interval=0.01)
    results: list[bool] = []
    waiters = [threading.Thread(target=lambda: results.append(watcher.wait_for(3, timeout=5.0))) for _ in range(16)]
    for w in waiters:
        w.start()
    time.sleep(0.2)
    pos.value = 3
    for w in waiters:
        w.join(5)
    assert results == [True] * 16
    # 16 requests waiting ~0.2 s with a 10 ms interval: about 20 reads in all, not 16 x 20
    assert pos.reads <= 40
    time.sleep(0.05)
    idle = pos.reads
    time.sleep(0.2)
    assert pos.reads == idle  # nobody waits: no queries


def test_a_failed_read_is_raised_in_the_waiting_request() -> None:
    pos = Position()
    pos.fail = RuntimeError("database unavailable")
    watcher = PositionWatcher(pos, interval=0.001)
    with pytest.raises(RuntimeError, match="database unavailable"):
        watcher.wait_for(1, timeout=2.0)
    pos.fail = None
    pos.value = 1
    assert watcher.wait_for(1, timeout=2.0) is True
