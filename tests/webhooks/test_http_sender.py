"""The webhook sender over ``http.client`` (issue 21: one kept connection per sender thread and
receiver, no pool searched per POST): connections reused, replaced when the receiver closed them,
every failure a short error naming its kind only, no redirect followed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infrastructure.webhooks.http_sender import HttpSender


class _Server:
    def __init__(self) -> None:
        self.connections = 0
        self.paths: list[str] = []
        self.bodies: list[bytes] = []
        self.status = 200
        self.close_after = False  # answer with Connection: close
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.connections += 1

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                server.paths.append(self.path)
                server.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(server.status)
                if server.status == 302:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "2")
                if server.close_after:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook?x=1"


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.http.shutdown()
    s.http.server_close()


def test_posts_reuse_one_kept_connection_and_carry_body_headers_and_query(server: _Server) -> None:
    sender = HttpSender(timeout_seconds=2)
    results = [sender.send(server.url, b'{"n":%d}' % i, {"Content-Type": "application/json"}) for i in range(3)]
    assert [(r.status_code, r.error, r.ok) for r in results] == [(200, None, True)] * 3
    assert server.connections == 1 and server.paths == ["/hook?x=1"] * 3
    assert server.bodies == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    sender.close()


def test_a_connection_the_receiver_closed_is_replaced(server: _Server) -> None:
    sender = HttpSender(timeout_seconds=2)
    server.close_after = True  # closed after each answer
    assert [sender.send(server.url, b"{}", {}).status_code for _ in range(2)] == [200, 200]
    assert server.connections == 2
    server.close_after = False
    assert sender.send(server.url, b"{}", {}).ok and server.connections == 3
    server.http.shutdown()  # every kept connection dropped by the receiver: the next POST opens a fresh one
    server.http.server_close()
    server.__init__()  # type: ignore[misc]  # a new receiver, another port
    assert sender.send(server.url, b"{}", {}).ok and server.connections == 1
    sender.close()


def test_each_sender_thread_keeps_its_own_connection(server: _Server) -> None:
    sender = HttpSender(timeout_seconds=2)
    threads = [threading.Thread(target=lambda: [sender.send(server.url, b"{}", {}) for _ in range(5)])
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(server.bodies) == 15 and server.connections == 3
    sender.close()


def test_failures_name_their_kind_only(server: _Server) -> None:
    sender = HttpSender(timeout_seconds=0.3)
    server.status = 503
    r = sender.send(server.url, b"{}", {})
    assert (r.status_code, r.error, r.ok) == (503, "HTTP 503", False)
    server.status = 302  # a redirect is not followed: a failed attempt
    r = sender.send(server.url, b"{}", {})
    assert (r.status_code, r.error) == (302, "HTTP 302") and server.paths == ["/hook?x=1"] * 2
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    r = sender.send(f"http://127.0.0.1:{port}/hook", b"{}", {})
    assert (r.status_code, r.error) == (None, "connection failed (ConnectionRefusedError)")
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        r = sender.send(f"http://127.0.0.1:{silent.getsockname()[1]}/hook", b"{}", {})
    assert (r.status_code, r.error) == (None, "timeout (TimeoutError)") and 250 <= r.latency_ms < 2000
    r = sender.send("ftp://127.0.0.1/hook", b"{}", {})
    assert (r.status_code, r.error) == (None, "connection failed (ValueError)")
    sender.close()


def test_an_answer_trickled_byte_by_byte_is_drained_no_longer_than_the_deadline() -> None:
    """The drain's deadline bounds a receiver that trickles its answer (each byte well within the
    read timeout): the sender stops at the deadline (timeout 0.5 s, here ~0.5 s, not the 3 s the
    receiver would trickle for), keeps the status it got, and does not keep the connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def trickle() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                for _ in range(150):  # 1 byte every 20 ms: 3 s in all
                    try:
                        conn.sendall(b"x")
                    except OSError:
                        return
                    threading.Event().wait(0.02)

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        sender = HttpSender(timeout_seconds=0.5)
        r = sender.send(f"http://127.0.0.1:{listener.getsockname()[1]}/hook", b"{}", {})
        assert (r.status_code, r.error) == (200, None) and 400 <= r.latency_ms < 1200
        assert getattr(sender._local, "kept", {}) == {}  # the rest of its answer unread: dropped
        sender.close()
        thread.join(5)


def test_a_chunked_answer_is_drained_and_its_connection_reused() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        accepted: list[int] = []

        def answer_chunked() -> None:
            conn, _ = listener.accept()
            accepted.append(1)
            with conn, conn.makefile("rb") as reader:
                for _ in range(2):
                    while reader.readline() not in (b"\r\n", b""):
                        pass  # the request's line and headers
                    reader.read(2)  # its body: b"{}"
                    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")

        thread = threading.Thread(target=answer_chunked, daemon=True)
        thread.start()
        sender = HttpSender(timeout_seconds=2)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        results = [sender.send(url, b"{}", {"Content-Type": "application/json"}) for _ in range(2)]
        assert [(r.status_code, r.error) for r in results] == [(200, None), (200, None)] and accepted == [1]
        sender.close()
        thread.join(5)
