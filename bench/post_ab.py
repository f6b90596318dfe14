"""``python -m bench.post_ab TREE_A [TREE_B ...] [--rounds N] [--seconds S]``: an interleaved A/B of
code trees on ``bench.s4_http``'s POST, by the CPU per POST of **every process on its path**: the
API workers, the projection runner and the PostgreSQL backends (issue 21, target 2).

Each arm has its own database, its own ``contracts projections run`` and its own ``contracts serve
--workers 2 --no-ui --no-scheduler``, all from the arm's tree (a runner lever is measured in its own
runner). wrk runs alternate between the arms (A B, then B A, ...); only one arm is loaded at a time,
so a round's CPU of an arm's processes is that arm's. PostgreSQL's shared processes (WAL writer,
checkpointer) are not counted: their work is the same per commit in both arms.

A tree is a checkout of the project (``git archive COMMIT | tar -x -C DIR``): its packages shadow
the installed ones (the processes' working directory and ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.data import CONTRACTOR, contract_id
from bench.harness import admin_dsn, database_url, median, scratch_database
from bench.s4_http import _cpu_seconds, _free_port, _tree_cpu_seconds, _wait_up, _wrk, populate, stop

_CLI = "import sys; from api.cli import main; sys.exit(main())"


def _backend_cpu(admin: str, dbname: str) -> dict[int, float]:
    with psycopg.connect(admin, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,))]
    out = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            out[pid] = _cpu_seconds(pid)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.post_ab", description=__doc__)
    parser.add_argument("trees", type=Path, nargs="+", metavar="TREE")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--contracts", type=int, default=200)
    args = parser.parse_args()
    trees = {"ABCDEFGH"[i]: path.resolve() for i, path in enumerate(args.trees)}
    print("arms: " + ", ".join(f"{arm} = {path}" for arm, path in trees.items()), flush=True)
    admin = admin_dsn()
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        try:
            arms: dict[str, dict[str, object]] = {}
            for arm, tree in trees.items():
                dsn = stack.enter_context(scratch_database(arm.lower(), prefix="post_ab"))
                key = populate(dsn, args.contracts)
                env = {**os.environ, "CONTRACTS_DATABASE_URL": database_url(dsn), "CONTRACTS_LOG_LEVEL": "WARNING",
                       "CONTRACTS_MODE": "production", "PYTHONPATH": str(tree)}
                quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
                runner = subprocess.Popen([sys.executable, "-c", _CLI, "projections", "run"], cwd=tree, env=env,
                                          **quiet)  # type: ignore[call-overload]
                port = _free_port()
                server = subprocess.Popen([sys.executable, "-c", _CLI, "serve", "--port", str(port), "--no-scheduler",
                                           "--workers", "2", "--no-ui"], cwd=tree, env=env,
                                          **quiet)  # type: ignore[call-overload]
                procs += [runner, server]
                arms[arm] = {"dsn": dsn, "db": psycopg.conninfo.conninfo_to_dict(dsn)["dbname"], "key": key,
                             "runner": runner, "server": server, "base": f"http://127.0.0.1:{port}"}
            for a in arms.values():
                _wait_up(f"{a['base']}/readyz", a["server"])  # type: ignore[arg-type]
            body = json.dumps({"contractor": {**CONTRACTOR, "contact_name": "Person %d"}})
            paths = [f"/v1/contracts/{contract_id(i)}/contractor" for i in range(args.contracts)]
            figures: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}

            def one(arm: str, seconds: float) -> dict[str, float]:
                a = arms[arm]
                server, runner = a["server"], a["runner"]
                api0, run0 = _tree_cpu_seconds(server.pid), _cpu_seconds(runner.pid)  # type: ignore[attr-defined]
                pg0 = _backend_cpu(admin, a["db"])  # type: ignore[arg-type]
                f = _wrk(a["base"], "POST", paths, body, {"X-API-Key": a["key"]}, seconds, Path(tmp))  # type: ignore[arg-type]
                time.sleep(0.3)  # the last batch projected
                api1, run1 = _tree_cpu_seconds(server.pid), _cpu_seconds(runner.pid)  # type: ignore[attr-defined]
                pg1 = _backend_cpu(admin, a["db"])  # type: ignore[arg-type]
                n = max(1.0, f["requests"])
                f["api"] = (api1 - api0) * 1000 / n
                f["runner"] = (run1 - run0) * 1000 / n
                f["pg"] = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) * 1000 / n
                f["total"] = f["api"] + f["runner"] + f["pg"]
                return f

            names = list(arms)
            for arm in names:
                one(arm, 1.5)  # warm-up: caches, prepared statements
            for n in range(args.rounds):
                for arm in (names if n % 2 == 0 else names[::-1]):
                    f = one(arm, args.seconds)
                    figures[arm].append(f)
                    print(f"  round {n} {arm}: {f['rate']:.0f}/s total {f['total']:.3f} ms (api {f['api']:.3f} "
                          f"runner {f['runner']:.3f} pg {f['pg']:.3f}) p99 {f['p99_ms']:.1f} errors {f['errors']:.0f}"
                          f" load {os.getloadavg()[0]:.1f}", flush=True)
            print(f"POST, load average {os.getloadavg()[0]:.1f}, medians of {args.rounds} rounds:")
            for arm in names:
                f = figures[arm]
                print(f"  {arm} {median([x['rate'] for x in f]):7.0f}/s  total {median([x['total'] for x in f]):.3f} "
                      f"ms/POST  api {median([x['api'] for x in f]):.3f}  runner {median([x['runner'] for x in f]):.3f}"
                      f"  pg {median([x['pg'] for x in f]):.3f}  p50 {median([x['p50_ms'] for x in f]):.2f}  "
                      f"p99 {median([x['p99_ms'] for x in f]):.2f} ms  errors {sum(x['errors'] for x in f):.0f}",
                      flush=True)
            if len(names) == 2:
                wins = sum(x["total"] < y["total"] for x, y in zip(figures[names[1]], figures[names[0]], strict=True))
                print(f"  {names[1]} lower than {names[0]} in {wins} of {args.rounds} pairs")
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
