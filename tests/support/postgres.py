"""Find or start a PostgreSQL server for tests (used by ``tests/conftest.py``).

Order: ``CONTRACTS_TEST_PG_DSN``; else a local server at ``postgresql://postgres@127.0.0.1:5432/test``;
else a throwaway cluster (``initdb`` + ``pg_ctl``) in a temporary directory, stopped and deleted
at interpreter exit; else a reason to skip.
"""

from __future__ import annotations

import atexit
import functools
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from support.live_server import free_port

ENV_DSN = "CONTRACTS_TEST_PG_DSN"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class PostgresTarget:
    """An administrative DSN (may create and drop databases) and where it came from."""

    dsn: str
    origin: str  # "env", "local" or "throwaway"


class SkipReason(str):
    """Why no PostgreSQL server could be had."""


def can_connect(dsn: str, timeout: int = 2) -> str | None:
    """``None`` if a connection works, else the error text."""
    try:
        with psycopg.connect(dsn, connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


@functools.cache
def find_postgres() -> PostgresTarget | SkipReason:
    """Cached per process, so one throwaway cluster serves a whole test session."""
    explicit = os.environ.get(ENV_DSN)
    if explicit:
        error = can_connect(explicit)
        return (
            PostgresTarget(explicit, "env")
            if error is None
            else SkipReason(f"{ENV_DSN} unreachable: {error}")
        )
    local_error = can_connect(DEFAULT_DSN)
    if local_error is None:
        return PostgresTarget(DEFAULT_DSN, "local")
    started = _start_throwaway_cluster()
    if isinstance(started, PostgresTarget):
        return started
    return SkipReason(f"no server at {DEFAULT_DSN} ({local_error}); {started}; set {ENV_DSN} to use another")


def create_scratch_database(admin_dsn: str) -> str:
    """Create a uniquely named empty database; return a DSN for it."""
    name = f"contracts_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(admin_dsn, dbname=name)


def database_url(dsn: str) -> str:
    """A libpq DSN (``user=... dbname=...``) as the ``postgresql://`` URL ``CONTRACTS_DATABASE_URL`` wants."""
    d = conninfo_to_dict(dsn)
    auth = quote(str(d.get("user") or "postgres"), safe="")
    if d.get("password"):
        auth += ":" + quote(str(d["password"]), safe="")
    return f"postgresql://{auth}@{d.get('host') or '127.0.0.1'}:{d.get('port') or 5432}/{quote(str(d['dbname']))}"


def drop_database(admin_dsn: str, dsn: str) -> None:
    """Drop the database ``dsn`` points at (disconnecting its sessions)."""
    name = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))


def eventsourcing_env(dsn: str, schema: str = "public") -> dict[str, str]:
    """The ``eventsourcing.postgres`` settings for a DSN (libpq defaults filled in)."""
    params: dict[str, Any] = conninfo_to_dict(dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "localhost")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_SCHEMA": schema,
    }


def _postgres_binaries() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if Path(bindir, "initdb").exists() and Path(bindir, "pg_ctl").exists():
            return Path(bindir)
    return None


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _start_throwaway_cluster() -> PostgresTarget | SkipReason:
    bindir = _postgres_binaries()
    if bindir is None:
        return SkipReason("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # the server refuses to run as root: run it as an ordinary user
        for candidate in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(candidate)
                break
            except KeyError:
                continue
        if owner is None:
            return SkipReason("running as root and no 'postgres' or 'nobody' user to run a cluster")
    tmp = Path(tempfile.mkdtemp(prefix="contracts-pg-"))
    if owner is not None:
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
    as_owner: dict[str, Any] = {} if owner is None else {"user": owner.pw_uid, "group": owner.pw_gid}
    data, log = tmp / "data", tmp / "server.log"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=tmp, capture_output=True, text=True, timeout=120, check=False, **as_owner
        )

    init = run(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    )
    if init.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        return SkipReason(f"initdb failed: {init.stderr.strip()[-500:]}")

    def cleanup() -> None:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)

    error = ""
    for _ in range(3):  # the free port may be taken by someone else in between
        port = free_port()
        options = f"-F -c fsync=off -c listen_addresses=127.0.0.1 -p {port} -k '{tmp}'"
        start = run(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"
        )
        if start.returncode == 0:
            atexit.register(cleanup)
            return PostgresTarget(f"postgresql://postgres@127.0.0.1:{port}/postgres", "throwaway")
        error = (start.stderr or start.stdout).strip()[-300:]
        if log.exists():
            error += " | " + log.read_text(errors="replace").strip()[-300:]
    cleanup()
    return SkipReason(f"pg_ctl start failed: {error}")
