"""Refuse request bodies over a size limit before anything parses them (413 problem+json).

A declared ``Content-Length`` over the limit is refused at once; a body that declares no length
(chunked) is counted as it arrives (``BodyCount``) and refused as soon as it passes the limit. A
declared length within the limit needs no count: the server reads no more than it declares. Run
by ``api.observability.RequestMiddleware`` (pure ASGI, before routing).
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from api.errors import problem_body, problem_response

DEFAULT_LIMIT = 1_048_576  # 1 MiB: the largest legitimate command body is a few kilobytes


def declared_too_large(declared: bytes, limit: int) -> bool:
    """A ``Content-Length`` value over ``limit``, or not a length at all."""
    return not declared.isdigit() or int(declared) > limit


class BodyCount:
    """``receive`` for a body without a declared length: past ``limit`` bytes the app sees a
    disconnected client (it stops reading) and ``too_large`` is set."""

    __slots__ = ("receive", "limit", "seen", "too_large")

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive, self.limit, self.seen, self.too_large = receive, limit, 0, False

    async def __call__(self) -> Message:
        if self.too_large:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.too_large = True
                return {"type": "http.disconnect"}
        return message


async def refuse(scope: Scope, send: Send, limit: int) -> None:
    body = problem_body(413, "payload-too-large", f"request bodies are limited to {limit} bytes",
                        title="Payload Too Large", instance=scope.get("path"))
    await problem_response(413, body)(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
