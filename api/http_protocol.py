"""uvicorn's HTTP protocols with the bounds an exposed server needs (issue 14, item 6).

uvicorn (0.54) bounds the idle time of a kept-alive connection (``timeout_keep_alive``) and, with
``limit_concurrency``, answers 503 to a *request* over the limit; nothing bounds how long a client
may take to send its request, and a connection that never completes one is never counted against
anything. Holding connections open with a header byte every few seconds (slowloris) exhausted
the process's descriptors. ``GuardedH11Protocol`` adds, per connection:

- a request read timeout: from the moment a connection is made, or a kept-alive connection
  receives the first byte of its next request, the whole request (headers and body) must arrive
  within ``http_request_read_timeout_seconds``; otherwise the connection is closed (a 408 is sent
  when nothing of a response has started);
- a connection cap: a connection beyond ``http_max_connections`` of this process is answered 503
  and closed at once, before anything is read, so the process never runs out of descriptors;
- ``TCP_NODELAY`` on every connection (see ``set_nodelay``).

``GuardedHttpToolsProtocol`` (what ``contracts serve`` runs, ``PROTOCOL``) does the same on
uvicorn's httptools (llhttp, C) parser, which costs a fraction of the pure-Python h11 parser
(16-18 % of the server's time under load, issue 21). llhttp bounds no header size, so it adds
the bound h11 had (``h11_max_incomplete_event_size``, ``MAX_HEADER_BYTES``): a request whose
request line and headers exceed it is answered 431 and closed. ``GuardedH11Protocol`` stays for
a platform without httptools (``PROTOCOL`` falls back to it).

The limits come from the settings (``configure``); a ``--workers`` process, which imports this
class by name, reads them from its environment on its first connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency; a platform without its wheel
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

log = logging.getLogger("contracts.http")

REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\n"
           b"connection: close\r\ncontent-length: 0\r\n\r\n")
TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
MAX_HEADER_BYTES = 16 * 1024  # the request line and headers of one request (h11_max_incomplete_event_size)


@dataclass(frozen=True)
class Limits:
    request_read_timeout: float = 10.0
    max_connections: int = 500


def configure(settings: Any) -> Limits:
    """Set the limits of every guarded protocol of this process from the settings."""
    _Guard.limits = Limits(settings.http_request_read_timeout_seconds, settings.http_max_connections)
    return _Guard.limits


def set_nodelay(transport: Any) -> None:
    """asyncio sets ``TCP_NODELAY`` only on sockets whose ``proto`` is TCP; the listening socket
    uvicorn's ``--workers`` supervisor hands to its processes comes back with ``proto`` 0, so the
    workers' connections kept Nagle's algorithm and a keep-alive client waited for the delayed ACK:
    ~40 ms per response (a bare FastAPI app fell from ~1,000 to ~350 req/s with 2 workers)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not a TCP socket after all
            pass


_REQUEST_RECEIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


class _Guard:
    """The connection cap and the request read timer, shared by both protocols (the counters are
    this process's, whichever protocol it runs)."""

    limits: ClassVar[Limits | None] = None
    refused: ClassVar[int] = 0  # connections refused over the cap (this process)
    timed_out: ClassVar[int] = 0  # connections closed for a request not sent in time
    connections: set[Any]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _read_timer: asyncio.TimerHandle | None

    def _refuse_over_cap(self, transport: asyncio.Transport) -> Limits | None:
        """TCP_NODELAY; the limits, or None when the connection was refused over the cap."""
        set_nodelay(transport)
        self._read_timer = None
        limits = self._limits()
        if len(self.connections) >= limits.max_connections:
            _Guard.refused += 1
            log.warning("connection refused: %d connections open (CONTRACTS_HTTP_MAX_CONNECTIONS)",
                        len(self.connections))
            self.transport = transport
            transport.write(REFUSED)
            transport.close()
            return None
        return limits

    def _response_started(self) -> bool:
        raise NotImplementedError

    @classmethod
    def _limits(cls) -> Limits:
        if _Guard.limits is None:
            from infrastructure.settings import load_settings

            configure(load_settings())
        assert _Guard.limits is not None
        return _Guard.limits

    def _arm(self, limits: Limits) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(limits.request_read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        timer = getattr(self, "_read_timer", None)
        if timer is not None:
            timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        _Guard.timed_out += 1
        log.info("connection closed: the request was not sent within %.0f s "
                 "(CONTRACTS_HTTP_REQUEST_READ_TIMEOUT_SECONDS)", self._limits().request_read_timeout)
        if not self._response_started():
            self.transport.write(TIMED_OUT)
        self.transport.close()


class GuardedH11Protocol(_Guard, H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        limits = self._refuse_over_cap(transport)
        if limits is None:
            return
        super().connection_made(transport)
        self._arm(limits)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self not in self.connections:  # refused at connection_made: nothing was set up
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        between_requests = self.cycle is None or self.cycle.response_complete
        if self._read_timer is None and self.conn.their_state is h11.IDLE and between_requests:
            self._arm(self._limits())  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state in _REQUEST_RECEIVED:
            self._disarm()  # headers and body are in: the bound is met (the app's time is not bounded here)

    def _response_started(self) -> bool:
        return self.cycle is not None and self.cycle.response_started


class _HeadersTooLarge(Exception):
    pass


if HttpToolsProtocol is not None:
    class GuardedHttpToolsProtocol(_Guard, HttpToolsProtocol):
        """The guards on httptools. A request is being read from its first byte (``data_received``
        between requests) until ``on_message_complete``; its request line and headers are counted
        as they arrive (raw bytes while the headers are incomplete, and what the parser hands
        over), so a trickled or a single oversized header block is refused at ``MAX_HEADER_BYTES``."""

        _reading = False  # a request's bytes have begun and its message is not complete
        _in_headers = False  # its headers are not complete
        _header_bytes = 0  # raw bytes received while the headers were incomplete
        _parsed_bytes = 0  # the request line and headers the parser handed over
        _too_large = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            limits = self._refuse_over_cap(transport)
            if limits is None:
                return
            super().connection_made(transport)
            self._arm(limits)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self not in self.connections:  # refused at connection_made: nothing was set up
                return
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._reading:
                between_requests = self.cycle is None or self.cycle.response_complete
                if self._read_timer is None and between_requests:
                    self._arm(self._limits())  # the first bytes of the next request on a kept-alive connection
                self._reading, self._in_headers, self._header_bytes, self._parsed_bytes = True, True, 0, 0
            super().data_received(data)
            if self._in_headers and not self.transport.is_closing():
                self._header_bytes += len(data)
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._refuse_too_large()

        def on_message_begin(self) -> None:
            if not self._reading:  # a pipelined request in the same chunk
                self._reading, self._header_bytes = True, 0
            self._in_headers, self._parsed_bytes = True, 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_headers = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._reading = self._in_headers = False
            self._disarm()  # headers and body are in: the bound is met (the app's time is not bounded here)

        def send_400_response(self, msg: str) -> None:
            if self._too_large:  # raised from a parser callback: httptools reports it as a parse error
                self._refuse_too_large()
                return
            super().send_400_response(msg)

        def _count(self, n: int) -> None:
            self._parsed_bytes += n
            if self._parsed_bytes > MAX_HEADER_BYTES:
                self._too_large = True
                raise _HeadersTooLarge

        def _refuse_too_large(self) -> None:
            self._disarm()
            log.info("connection closed: request headers over %d bytes", MAX_HEADER_BYTES)
            self.transport.write(TOO_LARGE)
            self.transport.close()

        def _response_started(self) -> bool:
            return self.cycle is not None and self.cycle.response_started

    PROTOCOL = "api.http_protocol:GuardedHttpToolsProtocol"
else:  # pragma: no cover
    PROTOCOL = "api.http_protocol:GuardedH11Protocol"
