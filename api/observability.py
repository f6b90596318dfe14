"""One request, one log line and one metric sample (issue 20).

``RequestMiddleware`` (pure ASGI, outermost) gives each request an id: the client's
``X-Request-ID`` when it is a plain token (letters, digits and ``._:-``, at most 64 characters),
else a new random one; the id is echoed in the response's ``X-Request-ID`` and set in the
``request_id`` context variable, so every log line written while the request is served names
it (``infrastructure.log_safety``). When the response is done it writes one ``contracts.access``
line (method, route template, status, duration in ms) and observes
``contracts_http_request_duration_seconds`` (``infrastructure.metrics``).

What it never writes: the raw path or query (client text; the route template says which
operation), headers, the API key or who presented it, the client's address, bodies. uvicorn's
own access log, which writes the raw path and the address, is off (``api.cli.serve``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import AUDITOR, OPERATOR, Authenticator, roles
from api.body_limit import BodyCount, declared_too_large, refuse
from infrastructure.log_safety import request_id
from infrastructure.metrics import CONTENT_TYPE, HTTP_REQUESTS, UNMATCHED, exposition

log = logging.getLogger("contracts.access")

HEADER = b"x-request-id"
_TOKEN = re.compile(rb"[A-Za-z0-9._:\-]{1,64}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: label "OTHER"
METRICS_PATH = "/metrics"


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's template with the prefix of any mount it is under (``/ui/contracts/{contract_id}``)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    mounted = str(scope.get("root_path") or "")
    prefix = mounted[len(root_path):] if mounted.startswith(root_path) else ""
    if template == "" and prefix:  # a mount itself matched (the static files): its prefix
        return prefix
    return prefix + template if not template.startswith(prefix) or not prefix else template


def _access_line(method: str, route: str, status: int, seconds: float, rid: str, trace_id: str | None = None) -> None:
    """The request's line, built directly (no caller lookup, no %-formatting of client text: every
    part is the code's own, so the escaping filter has nothing to do): a third of ``log.info``'s cost."""
    ms = round(seconds * 1000, 2)
    record = logging.LogRecord(log.name, logging.INFO, __file__, 0, f"{method} {route} {status} {ms:.1f}ms", None,
                               None)
    fields: dict[str, Any] = {"method": method, "route": route, "status": status, "duration_ms": ms}
    if trace_id is not None:
        fields["trace_id"] = trace_id
    record.fields = fields
    record.request_id = rid  # on the record itself: a handler may format it later
    record._escaped = True  # method: one of _METHODS; route: a template of the code; numbers
    log.handle(record)


class _Traced:
    """One OpenTelemetry server span per request (``tracer``: ``infrastructure.tracing``), continuing
    the caller's W3C trace context; the span is current while the app runs (child spans nest)."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry import propagate, trace

        self.tracer, self.propagate, self.trace = tracer, propagate, trace
        self.server = trace.SpanKind.SERVER

    def start(self, scope: Scope, method: str) -> tuple[Any, Any]:
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers") or ()
                   if name in (b"traceparent", b"tracestate")}
        span = self.tracer.start_span(method, context=self.propagate.extract(carrier) if carrier else None,
                                      kind=self.server)
        scope_token = self.trace.use_span(span, end_on_exit=False)
        scope_token.__enter__()
        return span, scope_token

    def end(self, span: Any, scope_token: Any, method: str, route: str, status: int, rid: str) -> str:
        span.update_name(f"{method} {route}")
        span.set_attributes({"http.request.method": method, "http.route": route, "http.response.status_code": status,
                             "contracts.request_id": rid})
        if status >= 500:
            span.set_status(self.trace.Status(self.trace.StatusCode.ERROR))
        scope_token.__exit__(None, None, None)
        span.end()
        return format(span.get_span_context().trace_id, "032x")


class RequestMiddleware:
    """Every HTTP request's edge in ONE pure-ASGI layer (issue 21: four layers, each wrapping
    ``send``, were a fifth of a GET's server time), in this order: the request id, span, access
    line and metric sample (this module); the body limit (``body_limit``: ``api.body_limit``);
    ``/ui`` to the pages (``ui``: ``api.ui``), with their own login; the API key and the role
    (``auth``: ``api.auth.Authenticator``). Each is optional (None: not applied)."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True, tracer: Any = None, body_limit: int | None = None,
                 ui: ASGIApp | None = None, ui_prefix: str = "/ui", auth: Authenticator | None = None) -> None:
        self.app, self.access_log, self.body_limit, self.ui, self.auth = app, access_log, body_limit, ui, auth
        self.ui_prefix, self.ui_under = ui_prefix, ui_prefix + "/"
        self.traced = _Traced(tracer) if tracer is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = declared = None
        chunked = False
        for name, value in scope.get("headers") or ():
            if name == HEADER:
                if rid is None:
                    rid = value.decode("ascii") if _TOKEN.fullmatch(value) else ""
            elif name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        rid = rid or os.urandom(8).hex()
        token = request_id.set(rid)
        root_path = str(scope.get("root_path") or "")
        status = 500  # what the client gets when the app fails before answering (the server answers 500)
        header = (HEADER, rid.encode("ascii"))
        span = span_scope = None
        if self.traced is not None:
            span, span_scope = self.traced.start(scope, str(scope.get("method", "")))
        count: BodyCount | None = None
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if count is not None and count.too_large:
                return  # whatever the app answers to a cut-off body is replaced by the 413 below
            if message["type"] == "http.response.start":
                status, answered = int(message["status"]), True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            limit = self.body_limit
            if limit is not None and declared is not None and declared_too_large(declared, limit):
                await refuse(scope, send_with_id, limit)
                return
            if limit is not None and (declared is None or chunked):  # a declared length: no more is read
                receive = count = BodyCount(receive, limit)
            try:
                await self._inner(scope, receive, send_with_id)
            except Exception:
                if count is None or not count.too_large:
                    raise
            if count is not None and count.too_large:
                count = None  # the 413 itself goes out
                if not answered:
                    await refuse(scope, send_with_id, limit or 0)
        finally:
            seconds = time.perf_counter() - started
            method = scope.get("method", "")
            method = method if method in _METHODS else "OTHER"
            route = route_template(scope, root_path)
            HTTP_REQUESTS.labels(method, route, str(status)).observe(seconds)
            trace_id = None
            if self.traced is not None:
                trace_id = self.traced.end(span, span_scope, method, route, status, rid)
            if self.access_log and log.isEnabledFor(logging.INFO):
                _access_line(method, route, status, seconds, rid, trace_id)
            request_id.reset(token)

    async def _inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if self.ui is not None and (path == self.ui_prefix or path.startswith(self.ui_under)):
            await self.ui(scope, receive, send)
        elif self.auth is None or await self.auth.admit(scope, receive, send):
            await self.app(scope, receive, send)


# --------------------------------------------------------------------------- /metrics

metrics_router = APIRouter(tags=["system"])


@metrics_router.get(METRICS_PATH, summary="Prometheus metrics (text exposition format)",
                    description="Request counts and latencies by route template and status, events appended, "
                                "projection position and lag, webhook queue and deliveries, scheduler sweeps. "
                                "Needs an operator or auditor key unless `CONTRACTS_METRICS_PUBLIC=true`. With "
                                "`serve --workers N` the figures are every worker's, added up (docs/operations.md).",
                    response_class=Response, include_in_schema=True,
                    responses={200: {"description": "Prometheus text exposition format 0.0.4",
                                     "content": {"text/plain": {"schema": {"type": "string"}}}}},
                    **roles(OPERATOR, AUDITOR))
def metrics(request: Request) -> Response:
    registries = getattr(request.app.state, "metrics_registries", ())
    return Response(exposition(*registries), media_type=CONTENT_TYPE)
