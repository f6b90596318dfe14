"""The cyclic collector relaxed for bulk jobs (issue 21): overlapping jobs share one raise."""

from __future__ import annotations

import gc
import threading

import pytest

from application.collector import relaxed_collector, resting_thresholds


def test_overlapping_jobs_restore_the_thresholds_of_before_the_first() -> None:
    before = resting_thresholds()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def second() -> None:
        first_in.wait()
        with relaxed_collector(50_000):
            second_in.set()
            first_out.wait()
            seen.append(gc.get_threshold())  # the first job ended: still relaxed for this one

    thread = threading.Thread(target=second)
    thread.start()
    with relaxed_collector(100_000):
        first_in.set()
        second_in.wait()
        assert gc.get_threshold()[0] == 100_000
    first_out.set()
    thread.join()
    assert seen[0][0] == 100_000 and seen[0][1:] == before[1:]
    assert resting_thresholds() == before


def test_a_failing_job_restores_the_thresholds() -> None:
    before = resting_thresholds()
    with pytest.raises(RuntimeError), relaxed_collector():
        assert gc.get_threshold()[0] >= 100_000
        raise RuntimeError("job failed")
    assert resting_thresholds() == before


def test_the_resting_thresholds_are_those_outside_every_job() -> None:
    before = resting_thresholds()
    with relaxed_collector(100_000):
        assert gc.get_threshold()[0] >= 100_000  # what another thread reads meanwhile
        assert resting_thresholds() == before  # what comes back when the job ends
    assert resting_thresholds() == before
