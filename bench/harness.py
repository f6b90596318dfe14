"""Common harness: a dedicated scratch database per scenario (dropped afterwards), the service
built on it, timing helpers, percentiles, peak memory of a child process, the table and JSON."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_DSN_ENV = "CONTRACTS_BENCH_PG_DSN"

# Production mode refuses to start without the qualified-invoice issuer (rule book 6.1): the bench, its
# child processes and the servers they start run as this fictional operator unless one is configured.
BENCH_ISSUER_ENV = {
    "CONTRACTS_ISSUER_NAME": "ベンチ運営株式会社 (benchmark, fictional)",
    "CONTRACTS_ISSUER_REGISTRATION_NUMBER": "T7123456789012",  # the check-digit example of the corporate number
    "CONTRACTS_ISSUER_ADDRESS": "東京都千代田区試験町1-2-3",
    "CONTRACTS_ISSUER_CONTACT": "billing@example.invalid",
}
for _key, _value in BENCH_ISSUER_ENV.items():
    os.environ.setdefault(_key, _value)


def admin_dsn() -> str:
    return os.environ.get(ADMIN_DSN_ENV) or os.environ.get("CONTRACTS_TEST_PG_DSN") or DEFAULT_ADMIN_DSN


@contextmanager
def scratch_database(label: str, prefix: str = "bench") -> Iterator[str]:
    """A new empty database ``<prefix>_<label>_<hex>``; dropped (sessions disconnected) afterwards."""
    admin = admin_dsn()
    name = f"{prefix}_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_url(dsn: str) -> str:
    p = conninfo_to_dict(dsn)
    password = f":{p['password']}" if p.get("password") else ""
    return f"postgresql://{p.get('user', 'postgres')}{password}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/" \
           f"{p['dbname']}"


def build(dsn: str, **settings: Any) -> Any:
    """``Services`` over ``dsn`` from the composition root (``infrastructure.bootstrap``): the
    settings of the environment with ``database_url`` and ``settings`` (e.g. ``pg_group_commit=False``)
    given, and a larger connection pool for the many-client scenarios."""
    from infrastructure.bootstrap import build_services, persistence_env
    from infrastructure.settings import load_settings

    values = load_settings(database_url=database_url(dsn), **settings)
    env = {**persistence_env(values), "POSTGRES_POOL_SIZE": "20", "POSTGRES_MAX_OVERFLOW": "10"}
    return build_services(values, env=env)


# --------------------------------------------------------------------------- numbers


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(q / 100.0 * len(ordered) + 0.5))))
    return float(ordered[rank - 1])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def maxrss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this program's own memory.
    Not ``ru_maxrss``: Linux carries it over ``fork`` and ``exec``, so every child of the bench
    reported at least the parent's peak at the time it was started (186 MiB for every memory row
    of a full run, whatever the child used), and a "flat" row compared the parent with itself."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(module: str, args: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    """Run ``python -m <module>`` with JSON ``args`` on stdin; it prints one JSON object last.
    A fresh process per measurement, so its peak memory (``maxrss_mib``) is that measurement's."""
    proc = subprocess.run([sys.executable, "-m", module], input=json.dumps(args), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def start_ready(module: str, flag: str, dsn: str, what: str, cwd: Any = ROOT) -> subprocess.Popen[str]:
    """Start ``python -m <module> <flag> <dsn>`` (a helper process of a scenario: a projection
    runner, a webhook worker) and wait for its first line, ``ready``."""
    proc = subprocess.Popen([sys.executable, "-m", module, flag, dsn], cwd=cwd, stdout=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"the {what} process did not start")
    return proc


def child_main(work: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Body of a child module: JSON args on stdin, JSON result (plus peak memory) on stdout."""
    args = json.loads(sys.stdin.read() or "{}")
    result = work(args)
    result["maxrss_mib"] = round(maxrss_mib(), 1)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the table: a service figure against its raw baseline."""

    metric: str
    unit: str
    service: float
    raw: float | None = None
    higher_is_better: bool = True
    target: str = ""
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.raw is None or not self.raw or self.service != self.service:
            return None
        return self.service / self.raw


@dataclass
class ScenarioResult:
    name: str
    title: str
    params: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "params": self.params, "seconds": round(self.seconds, 1),
                "notes": self.notes,
                "rows": [{"metric": r.metric, "unit": r.unit, "service": _round(r.service), "raw": _round(r.raw),
                          "ratio": _round(r.ratio, 3), "target": r.target, "met": r.met, **r.extra}
                         for r in self.rows]}


def _round(value: float | None, digits: int = 2) -> float | None:
    if value is None or value != value:
        return None
    return round(float(value), digits if abs(value) < 1000 else 0)


def fmt(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(results: Sequence[ScenarioResult]) -> str:
    head = ("scenario", "metric", "service", "raw", "ratio", "unit", "target", "met")
    lines = [head]
    for res in results:
        for r in res.rows:
            ratio = r.ratio
            lines.append((res.name, r.metric, fmt(r.service), fmt(r.raw), "-" if ratio is None else f"{ratio:.3f}x",
                          r.unit, r.target, {True: "yes", False: "NO", None: "-"}[r.met]))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    pg = ""
    try:
        with psycopg.connect(admin_dsn()) as conn:
            row = conn.execute("SELECT version()").fetchone()
            pg = str(row[0]) if row else ""
            settings = {name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                        for name in ("fsync", "synchronous_commit", "shared_buffers", "max_connections")}
    except psycopg.Error:
        settings = {}
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": mem_gib, "python": platform.python_version(),
            "platform": platform.platform(), "postgres": pg, "postgres_settings": settings,
            "load_average_at_start": os.getloadavg()}
