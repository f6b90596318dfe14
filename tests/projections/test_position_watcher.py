"""``infrastructure.position_watcher.PositionWatcher``: waiting for the read models when the projection
runner is another process (one shared poll of the position per process, not one per waiter)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infrastructure.position_watcher import PositionWatcher


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


def test_read_models_share_one_watcher_when_the_runner_is_another_process(tmp_path: Path) -> None:
    """``ReadModelsImpl.wait_for`` (read-your-writes, the sweep) without a runner thread in this process."""
    from infrastructure.bootstrap import build_read_models, build_services
    from infrastructure.settings import Settings

    services = build_services(Settings(sqlite_path=tmp_path / "w.sqlite", database_url=None))
    try:
        writer = build_read_models(services, in_process=False)
        follower = build_read_models(services, in_process=False)  # e.g. an API process: no runner thread here
        app = services.app
        app.open_contract("W-1", "kintone", "light", 5, {"name": "W K.K."},
                          datetime(2026, 3, 9, 1, tzinfo=UTC), trial=True)
        last = app.recorder.max_notification_id() or 0
        assert last > 0 and follower.wait_for(last, timeout=0.05) is False  # nobody projected yet
        threading.Timer(0.05, writer.runner.catch_up).start()  # "the other process"
        assert follower.wait_for(last, timeout=5.0) is True
        assert follower.watcher is not None and follower.watcher.reads > 0
        assert follower.wait_for(last, timeout=0.0) is True  # known already
    finally:
        services.close()


class Announcements:
    """A fake announcing store: ``listen`` then ``announced(timeout)`` hands out what was announced."""

    def __init__(self) -> None:
        self.listening = 0
        self._queue: list[int] = []
        self._cond = threading.Condition()

    def listen(self) -> None:
        self.listening += 1

    def announce(self, position: int) -> None:
        with self._cond:
            self._queue.append(position)
            self._cond.notify_all()

    def announced(self, timeout: float) -> int | None:
        with self._cond:
            if not self._queue:
                self._cond.wait(timeout)
            if not self._queue:
                return None
            best = max(self._queue)
            self._queue.clear()
            return best


def test_announced_positions_wake_the_waiters_without_polling() -> None:
    """Issue 21: the runner announces its position; the watcher listens before its one read of the
    position, then is woken by the announcement (no polling between)."""
    pos, ann = Position(), Announcements()
    watcher = PositionWatcher(pos, interval=0.001, listen=ann.listen, announced=ann.announced, fallback=5.0)
    threading.Timer(0.3, lambda: ann.announce(4)).start()
    t0 = time.monotonic()
    assert watcher.wait_for(4, timeout=3.0) is True
    assert 0.25 < time.monotonic() - t0 < 2.0
    assert ann.listening == 1 and pos.reads == 1  # polling every 1 ms would have read ~300 times


def test_a_failed_announcement_falls_back_to_reading_the_position() -> None:
    pos = Position()

    def broken(timeout: float) -> int | None:
        raise OSError("listen connection lost")

    watcher = PositionWatcher(pos, interval=0.001, listen=lambda: None, announced=broken, fallback=5.0)
    threading.Timer(0.05, lambda: setattr(pos, "value", 2)).start()
    assert watcher.wait_for(2, timeout=3.0) is True


@pytest.mark.postgres
def test_the_postgres_runner_announces_its_position_to_other_processes(fresh_pg_env: dict[str, str]) -> None:
    """Read-your-writes across processes on PostgreSQL: the API process's watcher is woken by the
    runner's announcement (NOTIFY in the batch's transaction), with one read of the position."""
    from infrastructure.bootstrap import build_read_models, build_services
    from infrastructure.settings import Settings

    runner_side = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    api_side = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    try:
        runner = build_read_models(runner_side, poll_interval=10.0)
        follower = build_read_models(api_side)
        assert not follower.in_process and not runner.in_process
        runner.start_runner()
        time.sleep(0.3)  # the runner is idle, listening to the event table
        api_side.app.open_contract("W-2", "kintone", "light", 5, {"name": "W K.K."},
                                   datetime(2026, 3, 9, 1, tzinfo=UTC), trial=True)
        last = api_side.app.recorder.max_notification_id() or 0
        assert follower.wait_for(last, timeout=5.0) is True
        watcher = follower.watcher
        assert watcher is not None and watcher.reads <= 2  # woken by the announcement, not by polls
        # a rebuild's shadow tables never announce: their positions are not the live tables'
        shadow = follower.store.shadow()
        assert shadow.tracking_name != follower.store.tracking_name
        shadow.drop()
        runner.stop()
    finally:
        api_side.close()
        runner_side.close()
