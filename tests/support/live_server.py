"""A real ``contracts serve`` (uvicorn) on 127.0.0.1 and a free port, for the tests that drive the
service from outside as an integrator does (the command line, the generated client, the browser,
the webhook worker in the served process).

``live_server`` starts it, waits (bounded) until ``/healthz`` answers 200, and on leaving stops it
(terminate, then kill), reads its log (stdout and stderr together) into ``LiveServer.output`` and
asserts that no traceback reached it. Checks of what must NOT be in the log (keys, secrets,
personal data) stay in each test, after its ``with`` block.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def installed_cli() -> list[str]:
    """The installed ``contracts`` script beside this interpreter, else ``python -m api.cli``."""
    script = Path(sys.executable).with_name("contracts")
    return [str(script)] if script.exists() else list(CLI)


def sandbox_env(sqlite_path: Path) -> dict[str, str]:
    """This process's environment with an embedded SQLite store at ``sqlite_path``, sandbox mode and
    no PostgreSQL URL."""
    env = {**os.environ, "CONTRACTS_SQLITE_PATH": str(sqlite_path), "CONTRACTS_MODE": "sandbox"}
    env.pop("CONTRACTS_DATABASE_URL", None)
    return env


def create_key(env: dict[str, str], role: str, name: str, *, cli: Sequence[str] = CLI, cwd: Path = ROOT) -> str:
    """``contracts keys create --role ROLE --name NAME``; the key it prints."""
    made = subprocess.run([*cli, "keys", "create", "--role", role, "--name", name], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=True)
    return made.stdout.strip()


@dataclass
class LiveServer:
    base: str
    process: subprocess.Popen[str]
    keys: dict[str, str] = field(default_factory=dict)
    output: str = ""  # the server's log, once it has stopped

    def call(self, method: str, path: str, body: Any, role: str) -> httpx.Response:
        return httpx.request(method, self.base + path, json=body, headers={"X-API-Key": self.keys[role]},
                             timeout=30)


def healthy(base: str) -> bool:
    """``GET /healthz`` answers 200. Plain ``http.client``, not ``httpx.get``: each of its calls
    builds a client and loads the CA bundle into a new TLS context (~35 ms of CPU), and a start is
    polled every few ms; on a loaded machine that polling slowed the server it waited for."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=1.0)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def live_server(env: dict[str, str], *, keys: dict[str, str] | None = None, cli: Sequence[str] = CLI,
                cwd: Path = ROOT, args: Sequence[str] = (), ready_seconds: float = 30,
                stop_seconds: float = 15) -> Iterator[LiveServer]:
    """``contracts serve --port N [args]`` with ``env``, answering at ``LiveServer.base``."""
    port = free_port()
    process = subprocess.Popen([*cli, "serve", "--port", str(port), *args], env=env, cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = LiveServer(f"http://127.0.0.1:{port}", process, dict(keys or {}))
    try:
        deadline = time.monotonic() + ready_seconds
        while not healthy(server.base):
            assert time.monotonic() < deadline and process.poll() is None, "contracts serve did not start"
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(stop_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
    server.output = process.stdout.read() if process.stdout else ""
    assert "Traceback" not in server.output, server.output[-3000:]
