"""Issue 7: the benchmark suite runs end to end (quick mode, small N) and reports every scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.postgres import PostgresTarget, find_postgres

ROOT = Path(__file__).resolve().parents[2]
# bench.__main__.SCENARIOS (not imported: under pytest the name ``bench`` is this test folder)
SCENARIOS = {"append", "month_start", "rebuild", "http", "replay", "sweep", "webhooks"}


@pytest.mark.slow
@pytest.mark.postgres
def test_quick_benchmark_reports_every_scenario(pg_dsn: str, tmp_path: Path) -> None:
    target = find_postgres()
    assert isinstance(target, PostgresTarget)
    out = tmp_path / "results.json"
    env = {**os.environ, "CONTRACTS_BENCH_PG_DSN": target.dsn}
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    document = json.loads(out.read_text())
    assert document["mode"] == "quick" and not document["failures"]
    assert set(document["scenarios"]) == set(SCENARIOS)
    for name, scenario in document["scenarios"].items():
        assert scenario["rows"], name
        for row in scenario["rows"]:
            assert row["service"] is not None and row["target"], (name, row)
    assert "scenario" in proc.stdout and "ratio" in proc.stdout  # the printed table
