"""Issue 20, observability: one structured log line per request with its id, and Prometheus
metrics at /metrics (docs/operations.md, "What to monitor")."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import CONTRACTOR, Harness, make_harness
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from infrastructure.log_safety import EscapeControls, JsonFormatter, TextFormatter
from infrastructure.settings import Settings


class Lines(logging.Handler):
    """The formatted lines of every record, as a process's stderr handler would write them."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.addFilter(EscapeControls())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    handler = Lines(JsonFormatter())
    root = logging.getLogger()
    # the test's own client (Starlette's TestClient is httpx) logs each raw URL at INFO: its lines
    # are not the service's (the service sends nothing with httpx since the webhook sender is http.client)
    client_log = logging.getLogger("httpx")
    old, old_client = root.level, client_log.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    client_log.setLevel(logging.WARNING)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)
    client_log.setLevel(old_client)


def access(lines: Lines) -> list[dict[str, object]]:
    return [d for d in map(json.loads, lines.lines) if d["logger"] == "contracts.access"]


def test_one_json_line_per_request_with_route_template_status_and_duration(api: Harness, json_lines: Lines) -> None:
    cid = api.apply()
    r = api.get(f"/v1/contracts/{cid}?x=secret-query")
    assert r.status_code == 200
    lines = access(json_lines)
    assert [(d["method"], d["route"], d["status"]) for d in lines] == [
        ("POST", "/v1/contracts", 201), ("GET", "/v1/contracts/{contract_id}", 200)]
    for d in lines:
        assert isinstance(d["duration_ms"], float) and d["duration_ms"] >= 0
        assert d["level"] == "INFO" and str(d["time"]).endswith("+00:00")
        assert len(str(d["request_id"])) == 16  # 8 random bytes, hex: none was sent


def test_request_id_is_accepted_echoed_and_on_every_line_of_the_request(api: Harness, json_lines: Lines) -> None:
    r = api.put("/v1/clock", {"now": "2026-03-03T01:00:00+00:00"}, X_Request_ID="trace-42.a:b")
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-42.a:b"
    mine = [d for d in map(json.loads, json_lines.lines) if d.get("request_id") == "trace-42.a:b"]
    loggers = {d["logger"] for d in mine}
    assert {"api", "contracts.access"} <= loggers  # the route's own line ("sandbox clock set") names it too


@pytest.mark.parametrize("sent", ["two\nlines", "x" * 65, "has space", "ünïcode"])
def test_a_request_id_that_is_not_a_plain_token_is_replaced(api: Harness, json_lines: Lines, sent: str) -> None:
    r = api.client.get("/healthz", headers=[("X-Request-ID", sent.encode("utf-8"))])
    assert r.status_code == 200
    echoed = r.headers["x-request-id"]
    assert echoed != sent and len(echoed) == 16
    assert access(json_lines)[-1]["request_id"] == echoed
    assert all(sent not in line for line in json_lines.lines)


def test_request_lines_hold_no_key_no_personal_data_no_raw_path(api: Harness, json_lines: Lines) -> None:
    cid = api.apply(customer="CUST-SECRET-9")
    api.get(f"/v1/contracts/{cid}")
    api.client.get("/v1/contracts/not-a-uuid%0aforged", headers=api.headers("billing"))
    api.client.get("/v1/contracts", headers={"X-API-Key": "ck_wrong_key_value"})
    text = "\n".join(json_lines.lines)
    for secret in (*api.keys.values(), "ck_wrong_key_value", "CUST-SECRET-9", CONTRACTOR["name"],
                   CONTRACTOR["contact_email"], cid, "forged", "testclient"):
        assert secret not in text
    statuses = [(d["route"], d["status"]) for d in access(json_lines)]
    assert ("/v1/contracts/{contract_id}", 422) in statuses
    assert ("(unmatched)", 401) in statuses  # refused before routing


def test_text_format_writes_the_fields_as_key_value() -> None:
    record = logging.LogRecord("contracts.access", logging.INFO, __file__, 1, "GET %s", ("/healthz",), None)
    record.fields = {"status": 200, "route": "/healthz"}
    assert TextFormatter().format(record).endswith("contracts.access: GET /healthz status=200 route=/healthz")


def test_log_format_setting() -> None:
    assert Settings().log_format == "text"
    assert Settings(log_format="json").log_format == "json"  # type: ignore[arg-type]


# --------------------------------------------------------------------------- /metrics

def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(api: Harness, role: str = "operator") -> dict[str, list[tuple[dict[str, str], float]]]:
    r = api.get("/metrics", role)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def test_metrics_need_an_operator_or_auditor_key(api: Harness) -> None:
    assert api.get("/metrics", None).status_code == 401
    assert api.get("/metrics", "billing").status_code == 403
    assert api.get("/metrics", "auditor").status_code == 200
    assert api.get("/metrics", "operator").status_code == 200


def test_requests_counted_by_route_template_and_status(api: Harness) -> None:
    created = dict(method="POST", route="/v1/contracts", status="201")
    fetched = dict(method="GET", route="/v1/contracts/{contract_id}", status="200")
    before = (sample("contracts_http_request_duration_seconds_count", **created),
              sample("contracts_http_request_duration_seconds_count", **fetched))
    cid = api.apply()
    api.get(f"/v1/contracts/{cid}")
    api.get(f"/v1/contracts/{cid}")
    assert sample("contracts_http_request_duration_seconds_count", **created) == before[0] + 1
    assert sample("contracts_http_request_duration_seconds_count", **fetched) == before[1] + 2
    found = scrape(api)
    buckets = [v for labels, v in found["contracts_http_request_duration_seconds_bucket"]
               if labels["route"] == "/v1/contracts/{contract_id}" and labels["status"] == "200"
               and labels["le"] == "+Inf"]
    assert buckets == [before[1] + 2]
    assert not any(cid in str(labels) for samples in found.values() for labels, _ in samples)


def test_events_appended_store_position_and_projection_lag(api: Harness) -> None:
    applied = sample("contracts_events_appended_total", type="Contract.Applied")
    api.apply()
    assert sample("contracts_events_appended_total", type="Contract.Applied") == applied + 1
    api.read_models.wait_for(api.app.recorder.max_notification_id(), 5)
    found = scrape(api)
    head = api.app.recorder.max_notification_id()
    assert found["contracts_event_store_events_total"] == [({}, head)]
    assert found["contracts_projection_position"] == [({"projection": "read_models"}, head)]
    assert found["contracts_projection_lag_events"] == [({"projection": "read_models"}, 0)]
    assert found["contracts_projection_lag_seconds"] == [({"projection": "read_models"}, 0)]
    rows = dict((labels["status"], v) for labels, v in found["contracts_webhook_queue_rows"])
    assert rows == {"pending": 0, "delivered": 0, "failed": 0, "cancelled": 0}


def test_projection_lag_in_events_and_seconds_when_the_runner_is_behind(tmp_path: Path) -> None:
    from infrastructure.metrics import StoreCollector, store_registry

    collector = StoreCollector(lambda: 10, lambda: [("read_models", 7)], lambda position: 100.0 + position,
                               lambda: (4, {"pending": 3}), clock=lambda: 130.0)
    registry = store_registry(collector)
    assert registry.get_sample_value("contracts_projection_lag_events", {"projection": "read_models"}) == 3
    # the oldest event not applied is at position 8, stamped 108.0: 22 s old at 130.0
    assert registry.get_sample_value("contracts_projection_lag_seconds", {"projection": "read_models"}) == 22.0
    assert registry.get_sample_value("contracts_webhook_queue_rows", {"status": "pending"}) == 3
    assert registry.get_sample_value("contracts_webhook_queue_lag_events") == 6


def test_a_store_that_cannot_be_read_leaves_its_part_out_and_counts_it() -> None:
    from infrastructure.metrics import StoreCollector

    def down() -> int:
        raise OSError("connection refused")

    collector = StoreCollector(down, lambda: [("read_models", 7)], lambda p: None)
    samples = {s.name: s.value for family in collector.collect() for s in family.samples}  # one scrape
    assert samples == {"contracts_projection_position": 7, "contracts_metrics_store_errors_total": 1}


def test_metrics_public_by_setting_and_off_by_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for value, unauthenticated in (("true", 200), ("false", 401)):
        monkeypatch.setenv("CONTRACTS_METRICS_PUBLIC", value)
        (tmp_path / value).mkdir()
        h = make_harness(tmp_path / value)
        try:
            assert h.get("/metrics", None).status_code == unauthenticated
        finally:
            h.close()
    monkeypatch.delenv("CONTRACTS_METRICS_PUBLIC")
    monkeypatch.setenv("CONTRACTS_METRICS_ENABLED", "false")
    (tmp_path / "off").mkdir()
    h = make_harness(tmp_path / "off")
    try:
        assert h.get("/metrics", "operator").status_code == 404
    finally:
        h.close()


def test_scheduler_sweeps_deadlines_fired_last_run_and_leader() -> None:
    import time
    from collections import Counter
    from datetime import date

    from application.sweep import SweepReport
    from infrastructure.scheduler import DeadlineScheduler, InProcessLock

    report = SweepReport(today=date(2026, 6, 1), until=date(2026, 6, 1), fired=3,
                         by_kind=Counter({"overdue": 2, "suspension_notice": 1}))
    scheduler = DeadlineScheduler(lambda should_stop: report, InProcessLock(), 60.0)
    before = (sample("contracts_scheduler_sweeps_total", outcome="complete"),
              sample("contracts_scheduler_deadlines_fired_total", kind="overdue"))
    started = time.time()
    assert scheduler.tick() is report
    assert sample("contracts_scheduler_sweeps_total", outcome="complete") == before[0] + 1
    assert sample("contracts_scheduler_deadlines_fired_total", kind="overdue") == before[1] + 2
    assert sample("contracts_scheduler_last_sweep_timestamp_seconds") >= started
    assert sample("contracts_scheduler_leader") == 1
    scheduler.shutdown()
    assert sample("contracts_scheduler_leader") == 0


def test_sweep_lines_carry_their_figures_as_fields(api: Harness, json_lines: Lines) -> None:
    from api_harness import jst

    from application.sweep import Sweeper
    from infrastructure.clock_store import DatabaseClock

    cid = api.concluded()  # applied and approved on 2026-03-02: service from 2026-04 (Art. 8.1)
    api.set_clock(jst(2026, 4, 1, 6))
    report = Sweeper(api.app, api.read_models, DatabaseClock(api.store)).run()
    assert report.by_kind["month_start"] == 1
    lines = [json.loads(line) for line in json_lines.lines]
    fired = [d for d in lines if d["logger"] == "application.sweep.fired"]
    assert {(d["kind"], d["aggregate_id"], d["due_on"]) for d in fired} >= {("month_start", cid, "2026-04-01")}
    summary = [d for d in lines if d["logger"] == "application.sweep" and "fired" in d]
    assert summary[-1]["fired"] == report.fired and summary[-1]["complete"] is True
    assert summary[-1]["until"] == "2026-04-01"
