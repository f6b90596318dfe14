"""``python -m bench [--quick] [--only NAME ...] [--rounds N] [--out bench/out/results.json]``"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import ROOT, ScenarioResult, machine, table

SCENARIOS = {  # name -> module
    "append": "bench.s1_append",
    "month_start": "bench.s2_month_start",
    "rebuild": "bench.s3_rebuild",
    "http": "bench.s4_http",
    "replay": "bench.s5_replay",
    "sweep": "bench.s6_sweep",
    "webhooks": "bench.s7_webhooks",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole suite in under a minute")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), metavar="NAME",
                        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measurement (medians reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "results.json")
    args = parser.parse_args(argv)
    names = args.only or list(SCENARIOS)
    started = time.time()
    info = machine()
    print(f"bench: {'quick' if args.quick else 'full'} run of {', '.join(names)} on {info['cpus']} CPUs "
          f"({info['cpu_model']}), load average {info['load_average_at_start'][0]:.2f}", flush=True)
    results: list[ScenarioResult] = []
    failures: dict[str, str] = {}
    for name in names:
        module = importlib.import_module(SCENARIOS[name])
        t0 = time.time()
        try:
            res: ScenarioResult = module.run(args.quick, args.rounds)
        except Exception as exc:  # report and go on with the others
            failures[name] = f"{type(exc).__name__}: {exc}"
            print(f"  {name}: FAILED {failures[name]}", file=sys.stderr, flush=True)
            continue
        res.seconds = time.time() - t0
        results.append(res)
        print(f"  {name}: done in {res.seconds:.1f}s", flush=True)
    print()
    print(table(results))
    for res in results:
        for note in res.notes:
            print(f"  [{res.name}] {note}")
    document = {
        "mode": "quick" if args.quick else "full",
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "machine": info,
        "load_average_at_end": os.getloadavg(),
        "scenarios": {res.name: res.to_json() for res in results},
        "failures": failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
