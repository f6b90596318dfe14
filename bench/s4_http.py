"""4. HTTP: POST a command and GET a contract with 16 concurrent clients against a bare FastAPI
app doing one raw INSERT / one SELECT on the same PostgreSQL. Targets (issue 21): GET at least
0.6x, POST at least 0.4x its throughput; p99 at most 2x the bare app's p99 in the same run. Also
measured: the CPU of the idle projection runner (target: under 2% of a core).

Servers run as subprocesses on 127.0.0.1: the service (``contracts serve --workers W --no-ui
--no-scheduler``, PostgreSQL, production mode) with its projection runner (``contracts projections
run``, woken by the event table's NOTIFY, its default poll interval otherwise; a POST answers
once the read models have its event: read-your-writes, woken by the runner's announced
position) and ``bench/bare_app.py`` under ``uvicorn --workers W``: both get the same number of
worker processes (``WORKERS``, default 2 = the machine's cores; ``CONTRACTS_BENCH_HTTP_WORKERS``
overrides it).

No deadline scheduler runs during the measurement: the fixture's contracts (``bench/data.py``)
are dated 2026-01..03 with unpaid invoices, so against today's wall clock a scheduler would spend
the whole run catching up months of deadlines of all of them (renewals, overdue, suspension,
termination: ~20,000 events, conflicting with the POSTs on the same contracts). That is background
work on stale data, not the request path this scenario measures; in production the scheduler's
steady state is a sweep a minute, or ``contracts scheduler`` as its own process.

Load: ``wrk`` (16 connections, 2 threads, Lua scripts picking a random contract per request)
when installed, else a Python asyncio generator (keep-alive HTTP/1.1, 16 connections). Every run
is bounded in time; localhost only.

POST: ``/v1/contracts/{id}/contractor`` (one ``ContractorInfoChanged``) vs ``POST /raw/events``
(one INSERT of a row of the same shape). GET: ``/v1/contracts/{id}`` vs ``/raw/events/{n}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.data import CONTRACTOR, Generator, contract_id
from bench.harness import ROOT, Row, ScenarioResult, build, database_url, median, percentile, scratch_database

NAME = "http"
CLIENTS = 16
# the bare app runs uvicorn as ``contracts serve`` does (api.cli.serve.uvicorn_options): the same parser and loop
BARE_PROTOCOL = os.environ.get("BENCH_HTTP_PROTOCOL") or "api.http_protocol:GuardedHttpToolsProtocol"
BARE_LOOP = os.environ.get("BENCH_HTTP_LOOP") or "auto"
WORKERS = int(os.environ.get("CONTRACTS_BENCH_HTTP_WORKERS") or 2)  # API processes, the same for both servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _contracts_cmd(*args: str) -> list[str]:
    if os.environ.get("BENCH_HTTP_PROTOCOL") or os.environ.get("BENCH_HTTP_LOOP"):  # an A/B run of the parser
        return [sys.executable, "-c", "import os, sys; import api.cli.serve as s; options = s.uvicorn_options; "
                "s.uvicorn_options = lambda settings: {**options(settings), "
                "'http': os.environ.get('BENCH_HTTP_PROTOCOL') or options(settings)['http'], "
                "'loop': os.environ.get('BENCH_HTTP_LOOP') or 'auto'}; "
                "from api.cli import main; sys.exit(main())", *args]
    script = Path(sys.executable).parent / "contracts"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())", *args]


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - localhost only
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


# --------------------------------------------------------------------------- load generators

_LUA = """
-- each wrk thread has its own Lua state: seed it per thread, or the threads pick the same
-- contracts at the same moments (and conflict with each other)
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end
local paths = {%(paths)s}
local bodies = %(body)s
local method = "%(method)s"
local headers = {["Content-Type"] = "application/json"%(headers)s}
local n = 0
request = function()
  n = n + 1
  local path = paths[math.random(#paths)]
  local body = nil
  if method == "POST" then body = string.format(bodies, n) end
  return wrk.format(method, path, headers, body)
end
"""


def _wrk(base: str, method: str, paths: list[str], body: str | None, headers: dict[str, str], seconds: float,
         workdir: Path) -> dict[str, float]:
    lua = workdir / f"load_{method.lower()}_{random.randrange(10**9)}.lua"
    lua.write_text(_LUA % {
        "paths": ", ".join(json.dumps(p) for p in paths),
        "body": json.dumps(body or ""),
        "method": method,
        "headers": "".join(f", [{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()),
    })
    proc = subprocess.run(["wrk", "-t2", f"-c{CLIENTS}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout",
                           "10s", "-s", str(lua), base], capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr or out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {"rate": rate, "p50_ms": _ms(lat.get("50", "nan")), "p99_ms": _ms(lat.get("99", "nan")),
            "errors": float(errors.group(1)) if errors else 0.0,
            "requests": float(requests.group(1)) if requests else 0.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _python_load(base: str, method: str, paths: list[str], body: str | None, headers: dict[str, str],
                 seconds: float) -> dict[str, float]:
    """Fallback generator: CLIENTS keep-alive connections, raw HTTP/1.1, bounded by ``seconds``."""
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = [0]

    async def client(index: int, stop_at: float) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        n = 0
        try:
            while time.perf_counter() < stop_at:
                n += 1
                payload = (body % (index * 1_000_000 + n)).encode() if body is not None else b""
                head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Type": "application/json"}.items())
                request = (f"{method} {random.choice(paths)} HTTP/1.1\r\nHost: {host}\r\n{head}"
                           f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
                t0 = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if not status_line.split()[1].startswith((b"2", b"3")):
                    errors[0] += 1
        finally:
            writer.close()

    async def main() -> float:
        stop_at = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(client(i, stop_at) for i in range(CLIENTS)))
        return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    return {"rate": len(latencies) / elapsed, "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000, "errors": float(errors[0]), "requests": len(latencies)}


def populate(dsn: str, contracts: int) -> str:
    """The fixture's ``contracts`` contracts projected, a billing key (returned) and the bare app's
    ``raw_http`` table with one row of the same shape per contract."""
    from application.api_keys import create_key
    from infrastructure.bootstrap import build_api_store, build_read_models

    services = build(dsn)
    try:
        Generator(services.app, months=1).write(dsn, contracts)
        build_read_models(services).runner.catch_up()
        store = build_api_store(services.app.env)
        store.setup()
        key = create_key(store, "billing", "bench", datetime.now(UTC))
        store.close()
    finally:
        services.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_http (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                     "topic text, state bytea, notification_id bigserial PRIMARY KEY)")
        state = json.dumps({"contractor": CONTRACTOR}).encode()
        with conn.cursor() as cur, cur.copy("COPY raw_http (originator_id, originator_version, topic, state) "
                                            "FROM STDIN") as copy:
            for i in range(contracts):
                copy.write_row((contract_id(i), 1, "x", state))
        conn.execute("VACUUM ANALYZE")
    return key


# --------------------------------------------------------------------------- the scenario


def run(quick: bool, rounds: int) -> ScenarioResult:
    seconds = 1.0 if quick else 5.0
    warm = 0.5 if quick else 2.0
    rounds = 1 if quick else rounds
    contracts = 200 if quick else 2000
    generator = "wrk" if shutil.which("wrk") else "python"
    result = ScenarioResult(NAME, "HTTP with 16 concurrent clients vs a bare FastAPI endpoint (one INSERT / SELECT)",
                            {"clients": CLIENTS, "seconds": seconds, "rounds": rounds, "contracts": contracts,
                             "load_generator": generator, "workers": WORKERS, "scheduler": False})
    procs: list[subprocess.Popen[bytes]] = []
    with scratch_database(NAME) as dsn, tempfile.TemporaryDirectory() as tmp:
        try:
            key = populate(dsn, contracts)
            env = {**os.environ, "CONTRACTS_DATABASE_URL": database_url(dsn), "CONTRACTS_LOG_LEVEL": "WARNING",
                   "CONTRACTS_MODE": "production", "BENCH_DSN": dsn}
            svc_port, raw_port = _free_port(), _free_port()
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            procs.append(subprocess.Popen(_contracts_cmd("projections", "run"),
                                          env=env, cwd=ROOT, **quiet))  # type: ignore[call-overload]
            serve = ["serve", "--port", str(svc_port), "--no-scheduler"]
            if WORKERS > 1:
                serve += ["--workers", str(WORKERS), "--no-ui"]
            procs.append(subprocess.Popen(_contracts_cmd(*serve), env=env, cwd=ROOT,
                                          **quiet))  # type: ignore[call-overload]
            # the same uvicorn settings as ``contracts serve --workers`` (TCP_NODELAY on the workers' connections)
            bare = (f"import uvicorn; uvicorn.run('bench.bare_app:app', port={raw_port}, workers={WORKERS}, "
                    f"log_level='warning', http={BARE_PROTOCOL!r}, loop={BARE_LOOP!r})")
            procs.append(subprocess.Popen([sys.executable, "-c", bare], env=env, cwd=ROOT,
                                          **quiet))  # type: ignore[call-overload]
            svc, raw = f"http://127.0.0.1:{svc_port}", f"http://127.0.0.1:{raw_port}"
            _wait_up(svc + "/readyz", procs[1])
            _wait_up(raw + "/healthz", procs[2])
            auth = {"X-API-Key": key}
            body = json.dumps({"contractor": {**CONTRACTOR, "contact_name": "Person %d"}})
            ids = [str(contract_id(i)) for i in range(contracts)]
            cases: dict[str, tuple[tuple[str, list[str], str | None, dict[str, str]], ...]] = {
                "POST": ((svc, [f"/v1/contracts/{i}/contractor" for i in ids], body, auth),
                         (raw, ["/raw/events"], body, {})),
                "GET": ((svc, [f"/v1/contracts/{i}" for i in ids], None, auth),
                        (raw, [f"/raw/events/{n}" for n in range(1, contracts + 1)], None, {})),
            }

            def load(base: str, method: str, paths: list[str], payload: str | None,
                     headers: dict[str, str], duration: float) -> dict[str, float]:
                if generator == "wrk":
                    return _wrk(base, method, paths, payload, headers, duration, Path(tmp))
                return _python_load(base, method, paths, payload, headers, duration)

            figures: dict[str, dict[str, list[dict[str, float]]]] = {}
            for method, ((s_base, s_paths, s_body, s_head), (r_base, r_paths, r_body, r_head)) in cases.items():
                load(s_base, method, s_paths, s_body, s_head, warm)  # warm-up (caches, prepared statements)
                load(r_base, method, r_paths, r_body, r_head, warm)
                for _ in range(rounds):
                    figures.setdefault(method, {}).setdefault("raw", []).append(
                        _with_cpu(procs[2].pid, load, r_base, method, r_paths, r_body, r_head, seconds))
                    figures[method].setdefault("svc", []).append(
                        _with_cpu(procs[1].pid, load, s_base, method, s_paths, s_body, s_head, seconds))
            time.sleep(1.0)  # the last batch projected
            idle_seconds = 2.0 if quick else 10.0
            before, t0 = _cpu_seconds(procs[0].pid), time.perf_counter()
            time.sleep(idle_seconds)
            idle_share = (_cpu_seconds(procs[0].pid) - before) / (time.perf_counter() - t0)
        finally:
            stop(procs)
    for method in ("POST", "GET"):
        s, r = figures[method]["svc"], figures[method]["raw"]
        svc_rate, raw_rate = median([x["rate"] for x in s]), median([x["rate"] for x in r])
        p99 = median([x["p99_ms"] for x in s])
        raw_p99 = median([x["p99_ms"] for x in r])
        least = 0.4 if method == "POST" else 0.6
        row = Row(f"{method} {'command' if method == 'POST' else 'contract'}", "requests/s", svc_rate, raw_rate,
                  target=f">= {least}x raw, p99 <= 2x raw p99", met=svc_rate >= least * raw_rate and p99 <= 2 * raw_p99)
        row.extra = {"service_p50_ms": round(median([x["p50_ms"] for x in s]), 2), "service_p99_ms": round(p99, 2),
                     "service_cpu_ms_per_request": round(median([x["cpu_ms"] for x in s]), 3),
                     "raw_cpu_ms_per_request": round(median([x["cpu_ms"] for x in r]), 3),
                     "raw_p50_ms": round(median([x["p50_ms"] for x in r]), 2),
                     "raw_p99_ms": round(raw_p99, 2), "p99_ratio": round(p99 / raw_p99, 2),
                     "service_errors": sum(x["errors"] for x in s), "raw_errors": sum(x["errors"] for x in r),
                     "workers": WORKERS}
        result.rows.append(row)
        if row.extra["service_errors"]:
            result.notes.append(f"{method}: {row.extra['service_errors']:.0f} non-2xx service responses "
                                "(409: two requests changed the same contract at once)")
    idle = Row("idle projection runner", "% of a core", idle_share * 100, target="< 2%", met=idle_share < 0.02)
    idle.extra = {"seconds": idle_seconds}
    result.rows.append(idle)
    return result


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the servers (killed after 20 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _with_cpu(pid: int, measure: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
    """``measure()``'s figures plus ``cpu_ms``: the CPU of the server (``pid`` and its worker
    processes; not PostgreSQL, not the projection runner) per request answered."""
    before = _tree_cpu_seconds(pid)
    figures = measure(*args)
    figures["cpu_ms"] = (_tree_cpu_seconds(pid) - before) * 1000 / max(1.0, figures["requests"])
    return figures


def _tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            total += _cpu_seconds(p)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        direct = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
    return [p for c in direct for p in (c, *_children(c))]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
