"""Issue 20: optional OpenTelemetry tracing. One server span per request named by the method and
route template, continuing a caller's W3C ``traceparent``, its trace id in the request's log
line; nothing from the client's path, query or headers in its attributes; off by default."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from api_harness import Harness
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.observability import RequestMiddleware
from infrastructure import tracing
from infrastructure.log_safety import JsonFormatter
from infrastructure.settings import Settings

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


class _Route:
    path = "/v1/contracts/{contract_id}"


async def _app(scope, receive, send):  # type: ignore[no-untyped-def]
    scope["route"] = _Route
    status = 500 if scope["path"].endswith("boom") else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _call(app: RequestMiddleware, path: str, headers: list[tuple[bytes, bytes]]) -> None:
    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b""}

    async def send(message):  # type: ignore[no-untyped-def]
        pass

    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "query_string": b"secret=1",
             "headers": headers}
    asyncio.run(app(scope, receive, send))


def test_a_server_span_per_request_continuing_the_callers_trace(caplog: pytest.LogCaptureFixture) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = RequestMiddleware(_app, tracer=provider.get_tracer("test"))
    with caplog.at_level(logging.INFO, logger="contracts.access"):
        _call(app, "/v1/contracts/599f12e1-cd72-52f4-8690-f2f41d5adb05", [(b"traceparent", TRACEPARENT.encode()),
                                                                           (b"x-request-id", b"req-1")])
        _call(app, "/v1/contracts/boom", [])
    first, second = exporter.get_finished_spans()
    assert first.name == "GET /v1/contracts/{contract_id}" and first.kind.name == "SERVER"
    assert format(first.context.trace_id, "032x") == CALLER_TRACE  # the caller's trace goes on
    assert format(first.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert dict(first.attributes) == {"http.request.method": "GET", "http.route": "/v1/contracts/{contract_id}",
                                      "http.response.status_code": 200, "contracts.request_id": "req-1"}
    assert second.parent is None and second.status.status_code.name == "ERROR"  # a 500: a new trace, failed
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "contracts.access"]
    assert lines[0]["trace_id"] == CALLER_TRACE and lines[0]["request_id"] == "req-1"
    assert lines[1]["trace_id"] == format(second.context.trace_id, "032x")


def test_tracing_is_off_by_default_and_named_by_its_setting() -> None:
    assert Settings().tracing == "off"
    assert tracing.tracer_for("off") is None
    assert tracing.tracer_for("console", "contracts-test") is not None  # the SDK's console exporter
    tracing.shutdown()


def test_no_span_of_fastapis_own_under_a_global_provider(api: Harness) -> None:
    """FastAPI's native telemetry is off (``api.app``): in a process with a global tracer provider
    (an auto-instrumented deployment) a request makes no span of FastAPI's, whose attributes would
    carry the client's path; the service's own span is RequestMiddleware's (``CONTRACTS_TRACING``)."""
    exporter = InMemorySpanExporter()
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # set once per process: an earlier test may have set it
        current.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    cid = api.apply("C-TRACE")
    assert api.get(f"/v1/contracts/{cid}/events?secret=1").status_code == 200
    assert api.get(f"/v1/contracts/{cid}").status_code == 200
    assert exporter.get_finished_spans() == ()
