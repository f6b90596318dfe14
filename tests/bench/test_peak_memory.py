"""The bench's memory rows ("flat as N grows", issue 21 targets 3 and 4) measure each child's own
peak, not its parent's: Linux carries ``ru_maxrss`` over fork and exec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARENT_MIB = 300


def test_a_child_reports_its_own_peak_not_the_parents() -> None:
    ballast = bytearray(PARENT_MIB * 1024 * 1024)
    for i in range(0, len(ballast), 4096):  # touch every page: resident in this (the parent) process
        ballast[i] = 1
    child = subprocess.run([sys.executable, "-c", "from bench.harness import maxrss_mib; print(maxrss_mib())"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert float(child.stdout) < PARENT_MIB / 2, child.stdout  # a bare interpreter: tens of MiB
    del ballast
