"""``python -m bench.runner_ab TREE_A TREE_B [--rounds N] [--events N] [--batch N]``: an interleaved
A/B of code trees on the projection runner's batches of one (or ``--batch``) event, by CPU per event
of the runner's process and of its PostgreSQL backends (issue 21, target 2: at 16 clients the
runner's batches are one or two events, each paying the batch's fixed cost).

The same work for every run: a template database holds ``bench.s4_http``'s fixture (projected)
and ``--events`` contractor changes not yet projected; each run projects them in a copy of it
(``CREATE DATABASE ... TEMPLATE``), in a process started from the arm's tree, ``run_once(limit)``
until caught up. Deterministic work: far less spread than a load test on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.data import CONTRACTOR, contract_id
from bench.harness import admin_dsn, build, median, scratch_database
from bench.s4_http import populate

_RUN = r"""
import contextlib, json, os, resource, sys
import psycopg
from bench.harness import build
from infrastructure.bootstrap import build_read_models

dsn, admin, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
services = build(dsn)
runner = build_read_models(services).runner
for _ in range(200):  # warm: connections, prepared statements, every contract touched once
    runner.run_once(limit=batch)

def backends():
    with psycopg.connect(admin, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (db,))]
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out

pg0, r0 = backends(), resource.getrusage(resource.RUSAGE_SELF)
events = 0
while n := runner.run_once(limit=batch):
    events += n
r1, pg1 = resource.getrusage(resource.RUSAGE_SELF), backends()
py = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1e6 / events
pg = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) * 1e6 / events
print(json.dumps({"events": events, "runner_us": py, "pg_us": pg}))
services.close()
"""


def _prepare(dsn: str, events: int) -> None:
    populate(dsn, 200)
    services = build(dsn)
    try:
        at = datetime.now(UTC)
        for n in range(events):
            services.app.change_contractor(contract_id(n % 200), {**CONTRACTOR, "contact_name": f"Person {n}"}, at)
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.runner_ab", description=__doc__)
    parser.add_argument("trees", type=Path, nargs=2, metavar="TREE")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--events", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    trees = {"A": args.trees[0].resolve(), "B": args.trees[1].resolve()}
    admin = admin_dsn()
    print("arms: " + ", ".join(f"{arm} = {path}" for arm, path in trees.items()), flush=True)
    figures: dict[str, list[dict[str, float]]] = {arm: [] for arm in trees}
    with scratch_database("template", prefix="post_runner_ab") as template:
        _prepare(template, args.events)
        name = conninfo_to_dict(template)["dbname"]
        for n in range(args.rounds):
            for arm in (["A", "B"] if n % 2 == 0 else ["B", "A"]):
                copy = f"post_runner_ab_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy),
                                                                                 sql.Identifier(name)))
                try:
                    dsn = make_conninfo(admin, dbname=copy)
                    out = subprocess.run([sys.executable, "-c", _RUN, dsn, admin, str(args.batch)], cwd=trees[arm],
                                         env={**os.environ, "PYTHONPATH": str(trees[arm]),
                                              "CONTRACTS_LOG_LEVEL": "WARNING"},
                                         capture_output=True, text=True, check=True)
                    f = json.loads(out.stdout.strip().splitlines()[-1])
                finally:
                    with psycopg.connect(admin, autocommit=True) as conn:
                        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))
                f["total_us"] = f["runner_us"] + f["pg_us"]
                figures[arm].append(f)
                print(f"  round {n} {arm}: {f['events']} events, runner {f['runner_us']:.1f} us/event, "
                      f"pg {f['pg_us']:.1f}, total {f['total_us']:.1f}  load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"batches of {args.batch}, load average {os.getloadavg()[0]:.1f}, medians of {args.rounds}:")
    for arm, f in figures.items():
        print(f"  {arm} runner {median([x['runner_us'] for x in f]):.1f} us/event  pg "
              f"{median([x['pg_us'] for x in f]):.1f}  total {median([x['total_us'] for x in f]):.1f}")
    wins = sum(b["total_us"] < a["total_us"] for a, b in zip(figures["A"], figures["B"], strict=True))
    print(f"  B lower than A in {wins} of {args.rounds} pairs")


if __name__ == "__main__":
    main()
