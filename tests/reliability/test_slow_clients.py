"""Connections held open until the process runs out of descriptors (issue 14, item 6).

The attack (slowloris): many connections to ``contracts serve``, each sending a request line and
then one more header byte every half second, never finishing. Before, uvicorn bounded neither the
time to send a request nor the number of connections: the process ran out of descriptors, every
other client was refused or timed out, and asyncio's "Too many open files" flooded the log
(83 MB in 16 s).

Here the server runs with 128 descriptors (``RLIMIT_NOFILE``, so the attack stays small), a cap
of 40 connections and a 2 s request read timeout; 200 slow connections are opened at once and
trickle for 7 s while a well-behaved client checks ``/healthz`` on a fresh connection every
0.25 s. Checked: the process survives; every slow connection is closed by the server (refused at
once over the cap, or cut at the read timeout); from 3.5 s on every well-behaved request is
answered; the log stays small (repeated lines rate-limited). Traffic to 127.0.0.1 only, bounded.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from reliability_kit import Deployment, record_figures, tail

pytestmark = [pytest.mark.reliability]

ATTACKERS = 200
ATTACK_SECONDS = 7.0
READ_TIMEOUT = 2.0
MAX_CONNECTIONS = 40
DESCRIPTORS = 128
LIMITED = (f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({DESCRIPTORS}, {DESCRIPTORS}))\n"
           "sys.argv = [sys.argv[1], *sys.argv[2:]]\n"
           "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


class Slow(threading.Thread):
    """One slowloris connection: a request line, then a header byte every 0.5 s; notes when the
    server closed it (``closed_after`` seconds after connecting; None: still open at the end)."""

    def __init__(self, port: int, until: float) -> None:
        super().__init__(daemon=True)
        self.port, self.until = port, until
        self.closed_after: float | None = None
        self.connected = False

    def run(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            self.closed_after = 0.0  # refused outright
            return
        self.connected = True
        started = time.monotonic()
        sock.settimeout(0.5)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while time.monotonic() < self.until:
                try:
                    if sock.recv(4096) == b"":
                        self.closed_after = time.monotonic() - started
                        return
                except TimeoutError:
                    pass
                sock.sendall(b"X")
        except OSError:
            self.closed_after = time.monotonic() - started
        finally:
            sock.close()


def test_slow_clients_cannot_exhaust_the_process(tmp_path: Path) -> None:
    deployment = Deployment("", tmp_path, mode="sandbox", extra_env={
        "CONTRACTS_SQLITE_PATH": str(tmp_path / "contracts.sqlite"),
        "CONTRACTS_HTTP_REQUEST_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "CONTRACTS_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS)})
    api = deployment.api()
    api.argv = [sys.executable, "-c", LIMITED, api.argv[2], *api.argv[3:]]
    probes: list[tuple[float, object]] = []
    try:
        api.start_ready()
        start = time.monotonic()
        until = start + ATTACK_SECONDS
        slow = [Slow(api.port, until) for _ in range(ATTACKERS)]
        for s in slow:
            s.start()
        while time.monotonic() < until:
            t0 = time.monotonic()
            try:
                r = httpx.get(api.base + "/healthz", timeout=2.0)
                probes.append((t0 - start, r.status_code))
            except httpx.HTTPError as exc:
                probes.append((t0 - start, type(exc).__name__))
            time.sleep(0.25)
        for s in slow:
            s.join(10)
        assert api.alive, f"the server died: {tail(api.log)}"
        after = httpx.get(api.base + "/healthz", timeout=5.0)
        assert after.status_code == 200
    finally:
        deployment.stop_all()
    log = api.log.read_text(errors="replace")
    still_open = [s for s in slow if s.closed_after is None]
    late = [p for p in probes if p[0] >= READ_TIMEOUT + 1.5 and p[1] != 200]
    figures = {"attackers": ATTACKERS, "descriptors": DESCRIPTORS, "max_connections": MAX_CONNECTIONS,
               "read_timeout_s": READ_TIMEOUT, "still_open_at_end": len(still_open),
               "closed_by_server_max_s": round(max((s.closed_after or 0.0) for s in slow), 2),
               "probes": len(probes), "probes_ok": sum(1 for p in probes if p[1] == 200), "late_failures": len(late),
               "log_bytes": len(log.encode()), "too_many_open_files_lines": log.count("Too many open files")}
    record_figures("slow_clients", figures)
    assert not still_open, f"{len(still_open)} slow connections still open after {ATTACK_SECONDS} s: {figures}"
    assert figures["closed_by_server_max_s"] <= READ_TIMEOUT + 1.5, figures
    assert not late, f"well-behaved requests failed after the read timeout: {late[:5]} {figures}"
    assert figures["log_bytes"] < 100_000 and figures["too_many_open_files_lines"] <= 25, figures


def _exchange(port: int, *chunks: bytes, pause: float = 0.0) -> bytes:
    """Send ``chunks`` (``pause`` s apart) on a fresh connection; what the server answered until it
    closed (or 5 s passed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed the connection mid-request: read its answer
                break
            time.sleep(pause)
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            answer += data
        return answer
    finally:
        sock.close()


def test_serve_runs_httptools_and_uvloop_and_bounds_the_header_size(tmp_path: Path) -> None:
    """``contracts serve`` runs the guarded protocol on httptools with uvloop's event loop (issue
    21: uvicorn's pure-Python h11 parser was 16-18 % of the server's time). llhttp bounds no header
    size, so the guard does, as h11 did at 16 KiB: request line and headers over 16 KiB are
    answered 431 and the connection closed, whether sent at once or trickled; 10 KiB are served."""
    deployment = Deployment("", tmp_path, mode="sandbox", extra_env={
        "CONTRACTS_SQLITE_PATH": str(tmp_path / "contracts.sqlite")})
    api = deployment.api()
    try:
        api.start_ready()
        maps = Path(f"/proc/{api.pid}/maps").read_text()
        assert "httptools" in maps and "uvloop" in maps, "the server did not load httptools and uvloop"
        head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        ok = _exchange(api.port, head + b"X-Pad: " + b"a" * 10_000 + b"\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200 "), ok[:80]
        at_once = _exchange(api.port, head + b"X-Pad: " + b"a" * 20_000 + b"\r\n\r\n")
        assert at_once.startswith(b"HTTP/1.1 431 "), at_once[:80]
        trickled = _exchange(api.port, head + b"X-Pad: ", *[b"a" * 1000] * 24, b"\r\n\r\n", pause=0.01)
        assert trickled.startswith(b"HTTP/1.1 431 "), trickled[:80]
        many = _exchange(api.port, head + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(200)) + b"\r\n")
        assert many.startswith(b"HTTP/1.1 431 "), many[:80]
        assert httpx.get(api.base + "/healthz", timeout=5.0).status_code == 200
    finally:
        deployment.stop_all()
