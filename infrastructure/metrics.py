"""Prometheus metrics (issue 20), with the maintained ``prometheus_client``.

Two kinds:

- **Process metrics**, counted where things happen, in the process where they happen: HTTP
  requests (``api.observability``), events appended (``InstrumentedApplication``), sweeps and
  deadlines fired (``infrastructure.scheduler``), webhook delivery outcomes
  (``infrastructure.webhooks.worker``).
- **Store metrics**, read from the database when ``/metrics`` is scraped (``StoreCollector``): the
  event store's head position, each projection's position and lag (events and seconds), the
  webhook queue's rows by status and its lag. They are the same whichever process is scraped,
  so they cover the processes that are not scraped (``contracts projections run``, ``contracts
  webhooks run``).

``contracts serve --workers N``: uvicorn's workers are separate processes, so the process
metrics use ``prometheus_client``'s multiprocess mode: ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at an empty folder before the workers start (a fresh temporary one,
removed at exit, unless the operator set it), each worker writes its values to its own files
there, and whichever worker answers ``/metrics`` adds up every worker's (``MultiProcessCollector``;
the scheduler's last-sweep time is the max, its leader flag the sum over live workers). A
worker that stops is marked dead (``mark_process_dead``) so its live gauges drop out. With one
process the values are in memory and the default registry adds the process and Python metrics
(CPU, memory, descriptors, GC), which multiprocess mode cannot give.

Standalone processes (``contracts scheduler``, ``contracts webhooks run``, ``contracts projections
run``) serve their own process metrics with ``--metrics-port`` (``serve_process_metrics``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("contracts.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED = "(unmatched)"  # the route label of a request no route matched (404, or refused before routing)

# Request latencies: most answers take milliseconds; a command waiting for its read models, seconds.
_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Histogram(
    "contracts_http_request_duration_seconds",
    "HTTP requests by method, route template and status: the seconds from the first byte of the request "
    "reaching the app to the last of the response (`_count`: requests)",
    ["method", "route", "status"], buckets=_BUCKETS)
EVENTS_APPENDED = Counter(
    "contracts_events_appended", "Events this process appended to the store, by event type", ["type"])
SWEEPS = Counter(
    "contracts_scheduler_sweeps", "Deadline sweeps run by the leader, by outcome (complete, incomplete, failed)",
    ["outcome"])
DEADLINES_FIRED = Counter(
    "contracts_scheduler_deadlines_fired", "Deadlines fired by the sweeps, by kind", ["kind"])
LAST_SWEEP = Gauge(
    "contracts_scheduler_last_sweep_timestamp_seconds", "When the last sweep ended (Unix time)",
    multiprocess_mode="max")
LEADER = Gauge(
    "contracts_scheduler_leader", "1 while this process holds the scheduler's leader lock (sum over processes: "
    "1 when a scheduler leads, never more)", multiprocess_mode="livesum")
WEBHOOK_DELIVERIES = Counter(
    "contracts_webhook_deliveries", "Webhook delivery attempts by outcome (delivered; not_delivered: the "
    "receiver failed or did not answer, retried or given up as the policy says; error: not sent)", ["outcome"])


def route_type(event: Any) -> str:
    """An event's type label: its class's qualified name (``Contract.Activated``), bounded by the code."""
    return type(event).__qualname__


_APPENDED_BY_CLASS: dict[type, Any] = {}  # event class -> its labelled counter (``labels`` locks and looks up)


def count_appended(events: Iterable[Any]) -> None:
    for event in events:
        child = _APPENDED_BY_CLASS.get(type(event))
        if child is None:
            child = _APPENDED_BY_CLASS[type(event)] = EVENTS_APPENDED.labels(route_type(event))
        child.inc()


# --------------------------------------------------------------------------- multiprocess mode

def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess() -> Callable[[], None]:
    """Before ``serve --workers N`` starts its workers: an empty ``PROMETHEUS_MULTIPROC_DIR`` for
    them (the operator's, emptied of old files, or a new temporary folder); returns the cleanup."""
    given = multiprocess_dir()
    if given is not None:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.db"):  # the last run's values would be added to this run's
            old.unlink()
        return lambda: None
    made = tempfile.mkdtemp(prefix="contracts-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return lambda: shutil.rmtree(made, ignore_errors=True)


def mark_dead(pid: int | None = None) -> None:
    """A worker stops: its live gauges no longer count (multiprocess mode only)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid if pid is not None else os.getpid())  # type: ignore[no-untyped-call]


def process_registry() -> CollectorRegistry:
    """The registry of the process metrics: every worker's, added up, in multiprocess mode; else
    this process's (with the default process and Python collectors)."""
    if multiprocess_dir() is None:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition(*extra: CollectorRegistry) -> bytes:
    """The text exposition of the process metrics and of ``extra`` registries (store metrics)."""
    return b"".join(_generate(r) for r in (process_registry(), *extra))


def serve_process_metrics(port: int | None, host: str = "127.0.0.1") -> None:
    """``--metrics-port`` of the standalone processes: this process's metrics over HTTP (no key:
    bind it to a private interface)."""
    if port is None:
        return
    from prometheus_client import start_http_server

    start_http_server(port, addr=host)
    log.info("process metrics on http://%s:%d/metrics", host, port)


# --------------------------------------------------------------------------- store metrics

class StoreCollector(Collector):
    """Read at scrape time: ``head()`` the store's last position; ``projections()`` pairs of
    (name, position) with ``event_time(position)`` the Unix time of the event at a position (for
    the lag in seconds: the age of the oldest event not yet applied); ``webhook_queue()`` the
    queue's (position, rows by status) or None. A part that fails is left out of the scrape
    (and counted in ``contracts_metrics_store_errors``), never failing the others."""

    def __init__(self, head: Callable[[], int], projections: Callable[[], Iterable[tuple[str, int]]],
                 event_time: Callable[[int], float | None],
                 webhook_queue: Callable[[], tuple[int, dict[str, int]] | None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.head, self.projections, self.event_time = head, projections, event_time
        self.webhook_queue, self.clock = webhook_queue, clock
        self.errors = 0

    def collect(self) -> Iterator[Any]:
        try:
            head = self.head()
        except Exception as exc:  # noqa: BLE001 - the store is down: say so, by type only
            self._failed("head", exc)
            head = None
        if head is not None:
            yield CounterMetricFamily("contracts_event_store_events", "Events in the store (its last position; "
                                      "all processes)", value=head)
        yield from self._projections(head)
        yield from self._webhooks(head)
        yield CounterMetricFamily("contracts_metrics_store_errors", "Parts of the store metrics that could "
                                  "not be read during scrapes (this process)", value=self.errors)

    def _projections(self, head: int | None) -> Iterator[Any]:
        position = GaugeMetricFamily("contracts_projection_position", "Last event applied to the read models",
                                     labels=["projection"])
        lag = GaugeMetricFamily("contracts_projection_lag_events", "Events stored but not yet applied",
                                labels=["projection"])
        seconds = GaugeMetricFamily("contracts_projection_lag_seconds", "Age of the oldest event not yet "
                                    "applied (0 when caught up)", labels=["projection"])
        try:
            rows = list(self.projections())
            for name, at in rows:
                position.add_metric([name], at)
                if head is not None:
                    lag.add_metric([name], max(0, head - at))
                    stamp = self.event_time(at + 1) if head > at else None
                    seconds.add_metric([name], max(0.0, self.clock() - stamp) if stamp is not None else 0.0)
        except Exception as exc:  # noqa: BLE001
            self._failed("projections", exc)
            return
        yield position
        if head is not None:
            yield lag
            yield seconds

    def _webhooks(self, head: int | None) -> Iterator[Any]:
        if self.webhook_queue is None:
            return
        try:
            queue = self.webhook_queue()
        except Exception as exc:  # noqa: BLE001
            self._failed("webhooks", exc)
            return
        if queue is None:
            return
        derived, counts = queue
        rows = GaugeMetricFamily("contracts_webhook_queue_rows", "Webhook deliveries by status (pending: the "
                                 "queue depth)", labels=["status"])
        for status in ("pending", "delivered", "failed", "cancelled", *sorted(set(counts) - {
                "pending", "delivered", "failed", "cancelled"})):
            rows.add_metric([status], counts.get(status, 0))
        yield rows
        if head is not None:
            yield GaugeMetricFamily("contracts_webhook_queue_lag_events", "Events not yet turned into webhook "
                                    "deliveries", value=max(0, head - derived))

    def _failed(self, part: str, exc: BaseException) -> None:
        self.errors += 1
        log.warning("metrics: %s not read (%s)", part, type(exc).__name__)


def store_registry(collector: StoreCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def store_collector(app: Any, read_models: Any, webhooks: Any = None) -> StoreCollector:
    """The store metrics of the application ``app``: its read models' position and, when the
    webhooks are built, their queue (``webhooks.store``)."""

    def head() -> int:
        return int(app.recorder.max_notification_id() or 0)

    def projections() -> list[tuple[str, int]]:
        return [("read_models", int(read_models.position()))]

    def event_time(position: int) -> float | None:
        found = app.recorder.select_notifications(start=position, limit=1)
        if not found:
            return None
        return float(app.mapper.to_domain_event(found[0]).timestamp.timestamp())

    def webhook_queue() -> tuple[int, dict[str, int]] | None:
        return int(webhooks.store.position()), dict(webhooks.store.counts())

    return StoreCollector(head, projections, event_time, webhook_queue if webhooks is not None else None)
