"""3. Projection rebuild from N events against the raw rate of reading the notification log.
Target: at least 0.1x (issue 21). Peak memory at two sizes (fresh process each): flat as N grows.

Setup (not timed): N/7 generated contracts of 7 events (Opened, Applied, Approved,
ServicePeriodStarted, InvoiceIssued, Renewed, InvoiceIssued) by COPY. Measured:
``ProjectionRunner.rebuild()`` (replay the whole log into shadow tables beside the live ones in
batches of 5,000, each batch one transaction with the shadow's tracking position, then swap them in;
``Settings.rebuild_processes`` worker processes share the contracts). Peak memory: the rebuilding
process or its largest worker, whichever is higher.
Raw: the same log read with psycopg, keyset pages of 2,000 rows by notification id, every column
fetched (no decoding).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from bench.data import Generator, analyze
from bench.harness import Row, ScenarioResult, build, child_main, median, run_child, scratch_database

NAME = "rebuild"
PAGE = 2000
TARGET = 0.1  # issue 21 (issue 7 asked for 0.3x)


def _setup(args: dict[str, Any]) -> dict[str, Any]:
    services = build(args["dsn"])
    try:
        generator = Generator(services.app, months=2)
        started = time.perf_counter()
        events = generator.write(args["dsn"], args["size"] // generator.events_per_contract)
        seconds = time.perf_counter() - started
    finally:
        services.close()
    analyze(args["dsn"])
    return {"events": events, "generate_s": seconds}


def _measure(args: dict[str, Any]) -> dict[str, Any]:
    from infrastructure.bootstrap import build_read_models

    services = build(args["dsn"])
    try:
        models = build_read_models(services)
        started = time.perf_counter()
        applied = models.runner.rebuild(progress=False)
        seconds = time.perf_counter() - started
    finally:
        services.close()
    # the rebuild's worker processes (``Settings.rebuild_processes``): their own peak memory
    return {"seconds": seconds, "events": applied, "processes": max(1, len(models.runner.worker_peaks_mib)),
            "workers_peak_rss_mib": round(max(models.runner.worker_peaks_mib, default=0.0), 1)}


def _raw(args: dict[str, Any]) -> dict[str, Any]:
    rows = 0
    started = time.perf_counter()
    with psycopg.connect(args["dsn"], autocommit=True) as conn:
        last = 0
        while True:
            page = conn.execute("SELECT notification_id, originator_id, originator_version, topic, state "
                                "FROM contracts_events WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
                                (last, PAGE), prepare=True).fetchall()
            if not page:
                break
            rows += len(page)
            last = page[-1][0]
    return {"seconds": time.perf_counter() - started, "events": rows}


def run(quick: bool, rounds: int) -> ScenarioResult:
    small, large = (1_000, 3_000) if quick else (100_000, 1_000_000)
    result = ScenarioResult(NAME, "Projection rebuild vs raw read of the notification log",
                            {"sizes": [small, large], "rounds_small": 1 if quick else rounds, "rounds_large": 1,
                             "page": PAGE})
    svc: dict[int, list[dict[str, Any]]] = {}
    raw: dict[int, list[dict[str, Any]]] = {}
    for size in (small, large):
        with scratch_database(NAME) as dsn:
            run_child("bench.s3_rebuild", {"phase": "setup", "dsn": dsn, "size": size})
            repeat = 1 if (quick or size == large) else rounds
            for _ in range(repeat):
                raw.setdefault(size, []).append(run_child("bench.s3_rebuild", {"phase": "raw", "dsn": dsn}))
                svc.setdefault(size, []).append(run_child("bench.s3_rebuild", {"phase": "measure", "dsn": dsn}))
    for size in (small, large):
        svc_rate = median([m["events"] / m["seconds"] for m in svc[size]])
        raw_rate = median([m["events"] / m["seconds"] for m in raw[size]])
        row = Row(f"N={size:,} events", "events/s", svc_rate, raw_rate, target=f">= {TARGET}x raw",
                  met=svc_rate >= TARGET * raw_rate)
        row.extra = {"service_seconds": round(median([m["seconds"] for m in svc[size]]), 2),
                     "raw_seconds": round(median([m["seconds"] for m in raw[size]]), 3),
                     "peak_rss_mib": svc[size][-1]["maxrss_mib"], "raw_peak_rss_mib": raw[size][-1]["maxrss_mib"],
                     "processes": svc[size][-1].get("processes", 1),
                     "workers_peak_rss_mib": svc[size][-1].get("workers_peak_rss_mib", 0.0)}
        result.rows.append(row)
    def peak(m: dict[str, Any]) -> float:  # the rebuilding process or its largest worker
        return float(max(m["maxrss_mib"], m.get("workers_peak_rss_mib", 0.0)))

    small_rss, large_rss = peak(svc[small][-1]), peak(svc[large][-1])
    result.rows.append(Row(f"peak memory N={small:,} -> {large:,}", "MiB", large_rss, small_rss,
                           higher_is_better=False, target="flat (<= 1.5x)", met=large_rss <= 1.5 * small_rss))
    return result


if __name__ == "__main__":
    child_main(lambda args: {"setup": _setup, "measure": _measure, "raw": _raw}[args["phase"]](args))
