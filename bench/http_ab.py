"""``python -m bench.http_ab TREE_A [TREE_B ...] [--rounds N] [--seconds S] [--methods GET,POST] [--bare]``:
an interleaved A/B of code trees serving ``bench.s4_http``'s requests (issue 21, target 2).

A loaded, shared machine moves whole runs of ``python -m bench --only http`` by more than an HTTP
lever changes them; here both servers (``contracts serve --workers 2 --no-ui --no-scheduler``,
one per tree; without a second tree, B is this one) run side by side on one database with one
projection runner, and their wrk runs alternate (A B C, then C B A, ...). Reported per arm: the
medians of requests/s, p50, p99 and the **server CPU per request** (the arm's processes only;
not PostgreSQL), the figure that does not depend on the load of the others. ``--bare`` adds
``bench/bare_app.py`` as a third arm (the ratio's denominator).

A tree is a checkout of the project (``git archive COMMIT | tar -x -C DIR``): its packages shadow
the installed ones (it is the server's working directory and ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.data import CONTRACTOR, contract_id
from bench.harness import ROOT, database_url, median, scratch_database
from bench.s4_http import _free_port, _wait_up, _with_cpu, _wrk, populate, stop


def _serve(tree: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = "import sys; from api.cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, "serve", "--port", str(port), "--no-scheduler",
                             "--workers", "2", "--no-ui"], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_ab", description=__doc__)
    parser.add_argument("trees", type=Path, nargs="+", metavar="TREE")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--contracts", type=int, default=200)
    parser.add_argument("--methods", default="GET,POST")
    parser.add_argument("--bare", action="store_true", help="also measure bench/bare_app.py")
    args = parser.parse_args()
    paths = args.trees if len(args.trees) > 1 else [*args.trees, ROOT]
    trees = {"ABCDEFGH"[i]: path.resolve() for i, path in enumerate(paths)}
    print("arms: " + ", ".join(f"{arm} = {path}" for arm, path in trees.items()), flush=True)
    procs: list[subprocess.Popen[bytes]] = []
    with scratch_database("http_ab") as dsn, tempfile.TemporaryDirectory() as tmp:
        try:
            key = populate(dsn, args.contracts)
            env = {**os.environ, "CONTRACTS_DATABASE_URL": database_url(dsn), "CONTRACTS_LOG_LEVEL": "WARNING",
                   "CONTRACTS_MODE": "production", "BENCH_DSN": dsn}
            runner = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())",
                      "projections", "run"]
            procs.append(subprocess.Popen(runner, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            bases: dict[str, str] = {}
            servers: dict[str, subprocess.Popen[bytes]] = {}
            for arm, tree in trees.items():
                port = _free_port()
                servers[arm] = _serve(tree, port, env)
                bases[arm] = f"http://127.0.0.1:{port}"
            if args.bare:
                port = _free_port()
                bare = (f"import uvicorn; uvicorn.run('bench.bare_app:app', port={port}, workers=2, "
                        "log_level='warning', http='api.http_protocol:GuardedHttpToolsProtocol', loop='auto')")
                servers["bare"] = subprocess.Popen([sys.executable, "-c", bare], cwd=ROOT, env=env,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                bases["bare"] = f"http://127.0.0.1:{port}"
            procs.extend(servers.values())
            for arm, base in bases.items():
                _wait_up(base + ("/healthz" if arm == "bare" else "/readyz"), servers[arm])
            auth = {"X-API-Key": key}
            body = json.dumps({"contractor": {**CONTRACTOR, "contact_name": "Person %d"}})
            ids = [str(contract_id(i)) for i in range(args.contracts)]
            cases = {
                "GET": lambda arm: ([f"/raw/events/{n}" for n in range(1, args.contracts + 1)], None, {})
                if arm == "bare" else ([f"/v1/contracts/{i}" for i in ids], None, auth),
                "POST": lambda arm: (["/raw/events"], body, {})
                if arm == "bare" else ([f"/v1/contracts/{i}/contractor" for i in ids], body, auth),
            }
            arms = list(bases)
            for method in args.methods.split(","):
                figures: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
                for arm in arms:  # warm-up: caches, prepared statements
                    paths, payload, headers = cases[method](arm)
                    _wrk(bases[arm], method, paths, payload, headers, 1.0, Path(tmp))
                for n in range(args.rounds):
                    for arm in (arms if n % 2 == 0 else arms[::-1]):
                        paths, payload, headers = cases[method](arm)
                        figures[arm].append(_with_cpu(servers[arm].pid, _wrk, bases[arm], method, paths, payload,
                                                      headers, args.seconds, Path(tmp)))
                print(f"{method} (load average {os.getloadavg()[0]:.1f}):")
                for arm in arms:
                    f = figures[arm]
                    print(f"  {arm:4} {median([x['rate'] for x in f]):8.0f} req/s  "
                          f"cpu {median([x['cpu_ms'] for x in f]):.3f} ms/req  "
                          f"p50 {median([x['p50_ms'] for x in f]):.2f} ms  "
                          f"p99 {median([x['p99_ms'] for x in f]):.2f} ms"
                          f"  errors {sum(x['errors'] for x in f):.0f}  cpu rounds "
                          f"{[round(x['cpu_ms'], 3) for x in f]}", flush=True)
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
