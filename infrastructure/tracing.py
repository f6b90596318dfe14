"""OpenTelemetry tracing, optional by setting (issue 20): ``CONTRACTS_TRACING=otlp`` (spans to an
OpenTelemetry collector over OTLP/HTTP, configured by the standard ``OTEL_EXPORTER_OTLP_*``
variables, e.g. ``OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318``) or ``console`` (spans
printed to stdout, for a look); ``off`` (the default) imports nothing and costs nothing.

The packages come with the ``tracing`` extra (``pip install 'contract-lifecycle[tracing]'``);
the API's request middleware (``api.observability``) makes one server span per request, named
by the method and route template, continuing the caller's trace when it sends a W3C
``traceparent``; the span's trace id is also in the request's log line (``trace_id``). Span
attributes follow the same rule as the log: the route template, the status, the request id;
never the raw path, the query, a header or a body.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

log = logging.getLogger("contracts.tracing")

Tracing = Literal["off", "otlp", "console"]
MISSING = ("CONTRACTS_TRACING={kind} needs the OpenTelemetry packages: pip install 'contract-lifecycle[tracing]' "
           "(opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http)")

_providers: dict[tuple[str, str], Any] = {}  # one provider per (kind, service name) and process


def tracer_for(kind: Tracing, service_name: str = "contracts") -> Any:
    """The tracer of this process for ``kind`` (None when off). Raises ``RuntimeError`` naming the
    extra when the packages are missing."""
    if kind == "off":
        return None
    key = (kind, service_name)
    if key not in _providers:
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

            exporter: SpanExporter
            if kind == "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                exporter = OTLPSpanExporter()
            else:
                exporter = ConsoleSpanExporter()
        except ImportError:
            raise RuntimeError(MISSING.format(kind=kind)) from None
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        _providers[key] = provider
        log.info("tracing: spans to %s (service.name %s)", kind, service_name)
    return _providers[key].get_tracer("contracts.api")


def shutdown() -> None:
    """Flush and stop every provider of this process (at exit)."""
    for provider in _providers.values():
        provider.shutdown()
    _providers.clear()
