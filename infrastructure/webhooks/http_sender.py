"""POSTing notifications with httpx: bounded timeouts, no redirects, the answer's body ignored.

One ``httpx.Client`` (a connection pool, thread-safe) per process. Any status outside 2xx, a
timeout, a refused or reset connection is a failed attempt; its error text names the kind of
failure only (never the body or the headers, which carry the signature).
"""

from __future__ import annotations

import logging
import time

import httpx

from application.notifications.ports import SendResult


class HttpxSender:
    def __init__(self, timeout_seconds: float = 10.0, connect_timeout_seconds: float = 5.0,
                 max_connections: int = 32) -> None:
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds, connect=min(connect_timeout_seconds, timeout_seconds)),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=False,  # no proxy from the environment: receivers are named by the operator
        )
        self.deadline = timeout_seconds
        logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO line per request names the URL

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        started = time.perf_counter()
        try:
            with self.client.stream("POST", url, content=body, headers=headers) as response:
                for _ in response.iter_bytes():  # drain (bounded by the read timeout) so the connection is reused
                    if time.perf_counter() - started > self.deadline:
                        break
                status = response.status_code
            error = None if 200 <= status < 300 else f"HTTP {status}"
            return SendResult(status, _ms(started), error)
        except httpx.TimeoutException as exc:
            return SendResult(None, _ms(started), f"timeout ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return SendResult(None, _ms(started), f"connection failed ({type(exc).__name__})")

    def close(self) -> None:
        self.client.close()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
