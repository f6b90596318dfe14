"""uvicorn's h11 protocol with the bounds an exposed server needs (issue 14, item 6).

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

log = logging.getLogger("contracts.http")

REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\n"
           b"connection: close\r\ncontent-length: 0\r\n\r\n")
TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")


@dataclass(frozen=True)
class Limits:
    request_read_timeout: float = 10.0
    max_connections: int = 500


def configure(settings: Any) -> Limits:
    """Set the limits of every ``GuardedH11Protocol`` of this process from the settings."""
    GuardedH11Protocol.limits = Limits(settings.http_request_read_timeout_seconds, settings.http_max_connections)
    return GuardedH11Protocol.limits


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


class GuardedH11Protocol(H11Protocol):
    limits: ClassVar[Limits | None] = None
    refused: ClassVar[int] = 0  # connections refused over the cap (this process)
    timed_out: ClassVar[int] = 0  # connections closed for a request not sent in time

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        self._read_timer: asyncio.TimerHandle | None = None
        limits = self._limits()
        if len(self.connections) >= limits.max_connections:
            GuardedH11Protocol.refused += 1
            log.warning("connection refused: %d connections open (CONTRACTS_HTTP_MAX_CONNECTIONS)",
                        len(self.connections))
            self.transport = transport
            transport.write(REFUSED)
            transport.close()
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

    # -- the timer ----------------------------------------------------------------------------------
    @classmethod
    def _limits(cls) -> Limits:
        if cls.limits is None:
            from infrastructure.settings import load_settings

            configure(load_settings())
        assert cls.limits is not None
        return cls.limits

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
        GuardedH11Protocol.timed_out += 1
        log.info("connection closed: the request was not sent within %.0f s "
                 "(CONTRACTS_HTTP_REQUEST_READ_TIMEOUT_SECONDS)", self._limits().request_read_timeout)
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(TIMED_OUT)
        self.transport.close()
