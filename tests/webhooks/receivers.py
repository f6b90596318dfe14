"""Real HTTP receivers on 127.0.0.1 for the webhook tests: each records what it was sent.

``behaviour(n, request)`` decides the answer to the n-th request (1-based): a status code, or
``HANG`` (never answer within the sender's timeout) or ``("slow", seconds, status)``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    behaviour: Callable[[int, Received], Any]
    hang_seconds: float = 5.0
    received: list[Received] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # headers and body go out in two writes: without this, 40 ms delayed ACKs
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (kill -9): nothing was delivered
                    self.close_connection = True
                    return
                got = Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with receiver.lock:
                    receiver.received.append(got)
                    n = len(receiver.received)
                answer = receiver.behaviour(n, got)
                if answer == HANG:
                    receiver.release.wait(receiver.hang_seconds)
                    return
                status = answer
                if isinstance(answer, tuple):
                    _, seconds, status = answer
                    time.sleep(seconds)
                self.send_response(int(status))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with receiver.lock:
                    receiver.answered.append(int(status))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.json for r in self.received]


Behaviour = Callable[[int, Received], Any]


def always(status: int) -> Behaviour:
    return lambda n, got: status


def fails_then_recovers(failures: int, status: int = 503) -> Behaviour:
    return lambda n, got: status if n <= failures else 200


def hangs() -> Behaviour:
    return lambda n, got: HANG


def slow(seconds: float) -> Behaviour:
    return lambda n, got: ("slow", seconds, 200)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
