"""Helpers of the reliability tests: real ``contracts`` processes on localhost ports against a
scratch PostgreSQL database, kill -9, a private PostgreSQL server to stop and start, and the
checks every scenario ends with (stored events, projections equal to a clean rebuild).

Everything here talks to 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from support.live_server import free_port
from support.postgres import database_url as database_url  # one place (tests/support)

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "api.cli"]
EVENTS_TABLE = "contracts_events"  # ContractsApplication.name + "_events", schema public
PROBLEM_JSON = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "article", "field", "instance"}
CONTRACTOR = {"name": "Reliability Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
              "contact_name": "Taro Reliability", "contact_email": "taro.reliability@example.invalid"}


def assert_problem(r: httpx.Response, *statuses: int) -> dict[str, Any]:
    """An RFC 9457 problem with one of ``statuses`` (any 4xx/5xx if none given), no stack trace."""
    if statuses:
        assert r.status_code in statuses, f"{r.status_code} not in {statuses}: {r.text[:500]}"
    assert r.headers.get("content-type", "").startswith(PROBLEM_JSON), (r.status_code, r.headers, r.text[:300])
    body: dict[str, Any] = r.json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == r.status_code, body
    assert str(body["type"]).startswith("urn:contracts:problem:"), body
    assert "Traceback" not in r.text
    return body


# --------------------------------------------------------------------------- processes


class Proc:
    """One subprocess (``contracts serve`` or ``contracts projections run``), restartable; its
    stdout and stderr go (appended across restarts) to one log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self._fh: Any = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        self._close_log()
        self._fh = open(self.log, "ab")  # noqa: SIM115 - closed in stop/kill9
        self.popen = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=self._fh, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        self.starts += 1

    def kill9(self) -> None:
        """``kill -9`` of this very process (by its pid), then reap it."""
        assert self.popen is not None
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.kills += 1
        self.popen.wait(15)
        self._close_log()

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class ApiServer(Proc):
    """``contracts serve --port N`` on 127.0.0.1 (same port across restarts)."""

    def __init__(self, name: str, env: dict[str, str], log: Path, port: int | None = None,
                 with_projections: bool = False, workers: int = 1) -> None:
        self.port = port or free_port()
        argv = [*CLI, "serve", "--port", str(self.port), "--host", "127.0.0.1"]
        if with_projections:
            argv.append("--with-projections")
        if workers > 1:
            argv += ["--workers", str(workers)]
        super().__init__(name, argv, env, log)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0, path: str = "/healthz") -> float:
        """Wait until the process answers ``path`` with 200; returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            assert self.alive, f"{self.name} exited with {self.popen.returncode if self.popen else None}: " \
                               f"{tail(self.log)}"
            if probe(self.port, path):
                return time.monotonic() - started
            assert time.monotonic() < deadline, f"{self.name} not ready after {timeout}s: {tail(self.log)}"
            time.sleep(0.05)

    def start_ready(self, timeout: float = 60.0) -> float:
        self.start()
        return self.wait_ready(timeout)


def probe(port: int, path: str) -> bool:
    """One plain HTTP GET on 127.0.0.1: 200 or not. Not ``httpx.get``: each of its calls builds a
    client and loads the CA bundle into a new TLS context (tens of ms of CPU), and a restart waited
    on polls it every 50 ms; on a loaded machine 22 restarts of the crash test spent minutes there."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# --------------------------------------------------------------------------- a deployment


@dataclass
class Deployment:
    """One scratch database and the processes that serve it; logs in ``workdir``."""

    url: str
    workdir: Path
    mode: str = "sandbox"
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_") or "_ISSUER_" in k}
        env.update({"CONTRACTS_DATABASE_URL": self.url, "CONTRACTS_MODE": self.mode, "CONTRACTS_LOG_LEVEL": "INFO",
                    "PYTHONUNBUFFERED": "1"})
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*CLI, *args], env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        with open(self.workdir / "cli.log", "a") as fh:
            fh.write(f"$ contracts {' '.join(args)}\n{done.stdout}{done.stderr}")
        assert done.returncode == 0, f"contracts {' '.join(args)}: {done.stderr[-2000:]}"
        return done

    def create_key(self, role: str, name: str) -> str:
        key = self.cli("keys", "create", "--role", role, "--name", name).stdout.strip()
        assert key.startswith("ck_"), key
        return key

    def api(self, name: str = "api", port: int | None = None, with_projections: bool = False,
            workers: int = 1) -> ApiServer:
        server = ApiServer(name, self.env, self.workdir / f"{name}.log", port, with_projections, workers)
        self.procs.append(server)
        return server

    def runner(self, name: str = "runner") -> Proc:
        proc = Proc(name, [*CLI, "projections", "run", "--poll-interval", "0.02"], self.env,
                    self.workdir / f"{name}.log")
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*.log")))

    @contextlib.contextmanager
    def services(self) -> Iterator[Any]:
        """The application and read models in this (test) process, for checks."""
        from infrastructure.bootstrap import build_read_models, build_services
        from infrastructure.settings import Settings

        services = build_services(Settings(database_url=self.url, mode=self.mode))  # type: ignore[arg-type]
        try:
            services.read_models = build_read_models(services)
            yield services
        finally:
            services.close()

    # -- the checks every scenario ends with ---------------------------------------------------------
    def stored_events(self, receipts: bool = False, settlement: bool = True) -> list[tuple[int, str, int, str]]:
        """(position, originator id, version, event name) of every stored business event, in order
        (or, with ``receipts``, of the command receipts: proofs that an Idempotency-Key was applied).
        ``settlement=False`` leaves out the transfers and customer accounts (rule book 7) that a
        payment or an application stores beside the contract's own event."""
        query = sql.SQL("SELECT notification_id, originator_id, originator_version, topic FROM {} "
                        "WHERE (topic LIKE %s) = %s AND (%s OR topic NOT LIKE %s) ORDER BY notification_id").format(
                            sql.Identifier("public", EVENTS_TABLE))
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            rows = conn.execute(query, ("%CommandReceipt.CommandApplied", receipts, settlement,
                                        "domain.settlement:%")).fetchall()
        return [(int(n), str(o), int(v), str(t).rsplit(".", 1)[-1]) for n, o, v, t in rows]

    def event_counts(self) -> Counter[str]:
        return Counter(name for *_, name in self.stored_events())

    def wait_projections(self, timeout: float = 60.0) -> int:
        """Wait until the read models have applied every stored event; returns the position."""
        deadline = time.monotonic() + timeout
        with self.services() as s:
            while True:
                last = s.app.recorder.max_notification_id() or 0
                position = s.read_models.position()
                if position >= last:
                    return position
                assert time.monotonic() < deadline, f"read models at {position} of {last} after {timeout}s"
                time.sleep(0.1)

    def projections_vs_rebuild(self) -> tuple[dict[str, Any], dict[str, Any], float]:
        """The incrementally built read tables, then the same after ``contracts projections rebuild``
        (a clean replay of the whole event log) and the rebuild's duration. Call with every
        process stopped and the read models caught up."""
        with self.services() as s:
            last = s.app.recorder.max_notification_id() or 0
            assert s.read_models.position() == last, "read models are behind: wait_projections() first"
            incremental = s.read_models.store.dump()
        started = time.monotonic()
        self.cli("projections", "rebuild", "--no-progress")
        elapsed = time.monotonic() - started
        with self.services() as s:
            rebuilt = s.read_models.store.dump()
        return incremental, rebuilt, elapsed


def dump_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """A short description of how two read-table dumps differ (for assertion messages)."""
    out = []
    for table in sorted(set(a) | set(b)):
        ra, rb = a.get(table, []), b.get(table, [])
        if ra != rb:
            only_a = [r for r in ra if r not in rb][:2]
            only_b = [r for r in rb if r not in ra][:2]
            out.append(f"{table}: {len(ra)} vs {len(rb)} rows; incremental only {only_a}; rebuild only {only_b}")
    return "; ".join(out) or "equal"


# --------------------------------------------------------------------------- HTTP load


class Tally:
    """Thread-safe counters and samples of a load run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.samples: dict[str, list[str]] = {}

    def add(self, what: str, n: int = 1, sample: str | None = None) -> None:
        with self.lock:
            self.counts[what] += n
            if sample is not None and len(self.samples.setdefault(what, [])) < 5:
                self.samples[what].append(sample)

    def __getitem__(self, what: str) -> int:
        return self.counts[what]


def client(base: str, key: str, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=timeout)


def apply_body(customer: str, **overrides: Any) -> dict[str, Any]:
    body = {"customer_number": customer, "service": "kintone", "grade": "standard", "users": 10,
            "contractor": CONTRACTOR, "billing_cycle": "monthly"}
    body.update(overrides)
    return body


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Append a scenario's figures to ``$RELIABILITY_FIGURES`` (JSON lines), when set: the numbers
    in docs/reliability.md come from there."""
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        with open(target, "a") as fh:
            fh.write(json.dumps({"scenario": name, **figures}, sort_keys=True, default=str) + "\n")


# --------------------------------------------------------------------------- a private PostgreSQL


def postgres_bindir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


class PrivateCluster:
    """A throwaway PostgreSQL server of this test (``initdb`` + ``pg_ctl``) on a free port.

    The database-restart scenario stops and starts *this* server, never the shared one that
    other engineers' suites and CI use at the same time. Run as the ``postgres`` user when the
    tests run as root (the server refuses root)."""

    def __init__(self) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("no initdb/pg_ctl (PostgreSQL server binaries) found")
        self.bindir = bindir
        self.owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.tmp = Path(tempfile.mkdtemp(prefix="contracts-reliability-pg-"))
        if self.owner is not None:
            os.chown(self.tmp, self.owner.pw_uid, self.owner.pw_gid)
        self.data, self.server_log = self.tmp / "data", self.tmp / "server.log"
        self.port = free_port()
        self.admin_dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.stops = 0
        self._run(str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        as_owner: dict[str, Any] = {} if self.owner is None else {"user": self.owner.pw_uid,
                                                                  "group": self.owner.pw_gid}
        done = subprocess.run(args, cwd=self.tmp, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, **as_owner)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-500:]} "
                               f"{tail(self.server_log, 500)}")
        return done

    def start(self) -> None:
        options = f"-F -c fsync=off -c listen_addresses=127.0.0.1 -p {self.port} -k {self.tmp} -c max_connections=60"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.server_log), "-w", "-t", "60",
                  "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.stops += 1

    def running(self) -> bool:
        try:
            with psycopg.connect(self.admin_dsn, connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- load with retries


@dataclass
class Sent:
    """One command of a load and what became of it."""

    key: str  # Idempotency-Key
    kind: str  # "apply" | "contractor"
    target: str  # the customer number (apply) or the new contractor name (contractor)
    contract_id: str | None = None  # contractor changes: the contract changed
    outcome: str = "pending"  # ack | unresolved (idempotency-in-progress) | refused | error | gave_up
    status: int | None = None
    replayed: bool = False
    attempts: int = 0
    statuses: list[Any] = field(default_factory=list)


class CommandLoad:
    """Worker threads sending unique commands, each with its own Idempotency-Key; a connection
    error or a 503 is retried with the same key until the answer is final (or ``per_command``
    seconds pass). Worker ``w`` applies new contracts ``{prefix}-{w}-{i}`` and, in turn, renames
    the contractor of its own contract ``{prefix}-{w}-home``, so no two workers race each other
    and every command has an effect of its own to count afterwards."""

    def __init__(self, base: str, api_key: str, prefix: str, workers: int = 3, per_command: float = 45.0,
                 pause: float = 0.0) -> None:
        self.base, self.api_key, self.prefix = base, api_key, prefix
        self.workers, self.per_command, self.pause = workers, per_command, pause
        self.stop = threading.Event()
        self.sent: list[Sent] = []
        self.tally = Tally()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, args=(w,), name=f"load-{w}", daemon=True)
                         for w in range(workers)]
        self.timeline: list[tuple[float, float, Any]] = []  # (sent at, answered at, status or error name)

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def finish(self, timeout: float = 90.0) -> None:
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "load workers did not stop"

    def _work(self, w: int) -> None:
        with httpx.Client(base_url=self.base, headers={"X-API-Key": self.api_key}, timeout=30.0) as http:
            home = self._send(http, Sent(f"{self.prefix}-{w}-home-{uuid4hex()}", "apply", f"{self.prefix}-{w}-home"),
                              until_ack=True)
            home_id = str(home.contract_id) if home.outcome == "ack" else None
            i = 0
            while not self.stop.is_set() and home_id is not None:
                i += 1
                if i % 2:
                    sent = Sent(uuid4hex(), "apply", f"{self.prefix}-{w}-{i}")
                else:
                    sent = Sent(uuid4hex(), "contractor", f"{self.prefix} {w}-{i} K.K.", contract_id=home_id)
                self._send(http, sent)
                if self.pause:
                    time.sleep(self.pause)

    def _send(self, http: httpx.Client, sent: Sent, until_ack: bool = False) -> Sent:
        with self._lock:
            self.sent.append(sent)
        deadline = time.monotonic() + self.per_command
        while True:
            sent.attempts += 1
            t0 = time.monotonic()
            try:
                if sent.kind == "apply":
                    r = http.post("/v1/contracts", json=apply_body(sent.target),
                                  headers={"Idempotency-Key": sent.key})
                else:
                    r = http.post(f"/v1/contracts/{sent.contract_id}/contractor",
                                  json={"contractor": {**CONTRACTOR, "name": sent.target}},
                                  headers={"Idempotency-Key": sent.key})
            except httpx.TransportError as exc:
                self._note(t0, type(exc).__name__, sent)
                if time.monotonic() > deadline:
                    sent.outcome = "gave_up"
                    return sent
                time.sleep(0.1)
                continue
            self._note(t0, r.status_code, sent)
            sent.status = r.status_code
            if r.status_code in (200, 201):
                sent.outcome, sent.replayed = "ack", r.headers.get("idempotent-replayed") == "true"
                if sent.kind == "apply":  # a receipt-recovered answer names the aggregate (api/idempotency.py)
                    body = r.json()
                    sent.contract_id = body.get("contract_id") or body.get("aggregate_id")
                self.tally.add("ack")
                self.tally.add("replayed", int(sent.replayed))
                return sent
            if r.status_code == 503:
                problem = assert_problem(r, 503)
                assert r.headers.get("retry-after"), "503 without Retry-After"
                assert problem["type"].endswith("service-unavailable"), problem
                self.tally.add("503")
            elif r.status_code == 409 and r.json().get("type", "").endswith("idempotency-in-progress"):
                # a claim left behind by a request the crash or outage interrupted: final for this run
                # (taken over after 2 minutes by the API); the command may or may not have been stored
                self.tally.add("in_progress")
                if not until_ack:
                    sent.outcome = "unresolved"
                    return sent
            elif r.status_code == 409 and r.json().get("type", "").endswith("conflict"):
                self.tally.add("409_conflict")  # a concurrent write (e.g. the scheduler): the key was released
            else:
                sent.outcome = "error" if r.status_code >= 500 else "refused"
                self.tally.add(f"status_{r.status_code}", sample=r.text[:300])
                return sent
            if time.monotonic() > deadline:
                sent.outcome = "gave_up"
                return sent
            time.sleep(0.2)

    def _note(self, t0: float, what: Any, sent: Sent) -> None:
        sent.statuses.append(what)
        with self._lock:
            self.timeline.append((t0, time.monotonic(), what))

    def outcomes(self) -> Counter[str]:
        return Counter(s.outcome for s in self.sent)


def uuid4hex() -> str:
    import uuid

    return uuid.uuid4().hex


@dataclass
class Effects:
    """How often each command of a load is found in the event store."""

    checked: int
    lost: list[Sent]  # acknowledged, not stored
    duplicates: dict[str, int]  # target -> times stored (> 1)
    stored_unresolved: list[Sent]  # not acknowledged, but stored (once): the crash hit after the commit
    acknowledged: int


def count_effects(deployment: Deployment, sent: list[Sent]) -> Effects:
    """Each apply is one contract (deterministic id: Opened + Applied once); each contractor
    change is one ContractorInfoChanged event carrying its unique name (read decrypted)."""
    from domain.contract import Contract

    events = deployment.stored_events()
    per_aggregate: dict[str, Counter[str]] = {}
    for _, oid, _, name in events:
        per_aggregate.setdefault(oid, Counter())[name] += 1
    names: Counter[str] = Counter()
    homes = {s.contract_id for s in sent if s.kind == "contractor" and s.contract_id}
    with deployment.services() as services:
        import uuid

        for cid in homes:
            for e in services.app.contract_events(uuid.UUID(cid)):
                if type(e).__name__ == "ContractorInfoChanged":
                    names[e.contractor["name"]] += 1
    lost: list[Sent] = []
    duplicates: dict[str, int] = {}
    stored_unresolved: list[Sent] = []
    for s in sent:
        if s.kind == "apply":
            cid = str(Contract.create_id(s.target, "kintone", ""))
            seen = per_aggregate.get(cid, Counter())
            times = max(seen["Opened"], seen["Applied"])
        else:
            times = names[s.target]
        if times > 1:
            duplicates[s.target] = times
        if s.outcome == "ack" and times == 0:
            lost.append(s)
        if s.outcome != "ack" and times == 1:
            stored_unresolved.append(s)
    targets = {s.target for s in sent if s.kind == "contractor"}
    strays = {n: c for n, c in names.items() if n not in targets and n != CONTRACTOR["name"]}
    assert not strays, f"contractor names nobody sent: {strays}"
    return Effects(len(sent), lost, duplicates, stored_unresolved, sum(1 for s in sent if s.outcome == "ack"))


# --------------------------------------------------------------------------- the app in this process


@dataclass
class InProcessApi:
    """The FastAPI app over a scratch PostgreSQL database in this process (as ``tests/api``'s
    harness, but on PostgreSQL): one key per role, the projection runner in a thread, a
    TestClient. For the input-fuzzing scenarios, where an HTTP hop adds nothing."""

    services: Any
    store: Any
    read_models: Any
    app: Any
    client: Any
    keys: dict[str, str]

    @classmethod
    def start(cls, url: str, mode: str = "sandbox", start: str = "2026-03-02T10:00:00+09:00") -> InProcessApi:
        import uuid
        import warnings
        from datetime import UTC, datetime

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient

        from api.app import create_app
        from api.auth import ROLES
        from application.api_keys import create_key
        from application.clock import SystemClock
        from infrastructure.bootstrap import build_api_store, build_read_models, build_services, persistence_env
        from infrastructure.clock_store import DatabaseClock
        from infrastructure.settings import Settings

        settings = Settings(database_url=url, mode=mode)  # type: ignore[arg-type]
        services = build_services(settings)
        store = build_api_store(persistence_env(settings))
        store.setup()
        clock: Any = SystemClock()
        if mode == "sandbox":
            clock = DatabaseClock(store)
            if store.get_clock() is None:  # the module's database may have a clock already (forward only)
                clock.set(datetime.fromisoformat(start))
        read_models = build_read_models(services, clock=clock, start_runner=True, poll_interval=0.02)
        app = create_app(services, read_models, clock, store, mode=mode)
        keys = {role: create_key(store, role, f"{role}-{uuid.uuid4().hex[:6]}", datetime.now(UTC)) for role in ROLES}
        client = TestClient(app, raise_server_exceptions=False)
        return cls(services, store, read_models, app, client, keys)

    def headers(self, role: str | None = "billing", **extra: str) -> dict[str, str]:
        h = {} if role is None else {"X-API-Key": self.keys[role]}
        h.update({k.replace("_", "-"): v for k, v in extra.items()})
        return h

    def events(self) -> int:
        return int(self.services.app.recorder.max_notification_id() or 0)

    def close(self) -> None:
        self.client.close()
        self.read_models.stop()
        self.store.close()
        self.services.close()
