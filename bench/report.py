"""``python -m bench.report [bench/out/results.json]``: the figures of a run as Markdown (the
machine, then one table row per measurement), to paste into ``bench/RESULTS.md``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.harness import ROOT, fmt

KEYS = ("service_p50_ms", "service_p99_ms", "raw_p50_ms", "raw_p99_ms", "p50_ms", "max_ms", "peak_rss_mib",
        "commands_per_transaction", "service_cpu_ms_per_command", "raw_cpu_ms_per_insert", "contracts_per_s",
        "events_written", "service_seconds", "raw_seconds", "fired", "deadline_rows", "raw_query_p99_ms",
        "events", "snapshots", "service_errors")


def render(document: dict[str, Any]) -> str:
    m = document["machine"]
    lines = [
        f"Run: {document['mode']} mode, started {document['started_at']}, {document['seconds']:.0f} s.",
        "",
        f"* CPU: {m['cpus']} x {m['cpu_model']}; memory {m['memory_gib']} GiB; Python {m['python']}",
        f"* {m['postgres']}",
        "* PostgreSQL settings: " + ", ".join(f"{k}={v}" for k, v in m.get("postgres_settings", {}).items()),
        f"* load average at start {m['load_average_at_start'][0]:.2f}, at end {document['load_average_at_end'][0]:.2f}",
        "",
        "| scenario | measurement | service | raw | ratio | unit | target | met | details |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, scenario in document["scenarios"].items():
        for row in scenario["rows"]:
            details = ", ".join(f"{k}={row[k]}" for k in KEYS if k in row and row[k] is not None)
            ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}x"
            met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
            lines.append(f"| {name} | {row['metric']} | {fmt(row['service'])} | {fmt(row['raw'])} | {ratio} | "
                         f"{row['unit']} | {row['target']} | {met} | {details} |")
    if document.get("failures"):
        lines += ["", "Failed scenarios: " + "; ".join(f"{k}: {v}" for k, v in document["failures"].items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "out" / "results.json"
    sys.stdout.write(render(json.loads(path.read_text())))
