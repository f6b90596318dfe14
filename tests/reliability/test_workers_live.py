"""Scale-out, live (issue 20): ``contracts serve --workers 2`` (two uvicorn worker processes on one
port, each with its leader-elected scheduler) beside ``contracts projections run`` on PostgreSQL,
real processes on 127.0.0.1, under a command load with Idempotency-Keys.

Checked: both workers start and answer requests (every request's JSON access line names the process that
served it: ``pid``, matched by the ``X-Request-ID`` the test sent); nothing acknowledged is lost
or stored twice; the read models equal a clean rebuild; ``/metrics`` adds up both workers (its
request counts equal the answers the clients got, exactly) and exactly one scheduler leads.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from reliability_kit import CommandLoad, Deployment, count_effects, dump_difference, record_figures

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

LOAD_SECONDS = 6.0
FRESH_CONNECTIONS = 60  # GET /healthz, each on a new connection (the kernel hands each to a worker)
MORE_FRESH_SECONDS = 30.0  # if the kernel happened to give all 60 to one worker: more, until both have served


def started_workers(log: Path) -> set[object]:
    """The pids whose uvicorn worker logged 'Application startup complete.'"""
    return {line.get("pid") for line in map(json.loads, (t for t in log.read_text(errors="replace").splitlines()
                                                          if t.startswith("{")))
            if line.get("logger") == "uvicorn.error" and line.get("message") == "Application startup complete."}


def pids_of(log: Path, request_ids: list[str]) -> Counter[object]:
    by_id = {str(line["request_id"]): line for line in access_lines(log)}
    return Counter(by_id[rid]["pid"] for rid in request_ids if rid in by_id)


def access_lines(log: Path) -> list[dict[str, object]]:
    lines = []
    for text in log.read_text(errors="replace").splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if line.get("logger") == "contracts.access":
                lines.append(line)
    return lines


def scrape(base: str, key: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def requests_counted(found: dict[str, list[tuple[dict[str, str], float]]], method: str, route: str,
                     status: str) -> float:
    return sum(v for labels, v in found.get("contracts_http_request_duration_seconds_count", [])
               if labels["method"] == method and labels["route"] == route and labels["status"] == status)


def test_two_workers_serve_lose_nothing_and_count_together(scratch_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    deployment = Deployment(scratch_url, tmp_path, mode="production", extra_env={"CONTRACTS_LOG_FORMAT": "json"})
    try:
        key = deployment.create_key("billing", "load")
        scraper = deployment.create_key("auditor", "prometheus")
        api = deployment.api(workers=2)
        runner = deployment.runner()
        api.start_ready()
        deadline = time.monotonic() + 60  # start_ready saw one worker; a loaded machine may start the other later
        while len(started_workers(api.log)) < 2:
            assert time.monotonic() < deadline, f"the second worker did not start: {started_workers(api.log)}"
            time.sleep(0.1)
        runner.start()
        load = CommandLoad(api.base, key, "WORKERS", workers=4)
        load.start()
        deadline = time.monotonic() + 60  # warm-up: the runner's first batch, every worker's first command
        while sum(1 for s in list(load.sent) if s.outcome == "ack") < 12:
            assert time.monotonic() < deadline, f"the load did not get going: {load.outcomes()}"
            time.sleep(0.1)
        fresh_ids: list[str] = []
        fresh_status: Counter[int] = Counter()
        lock = threading.Lock()

        def fresh(n: int) -> None:
            for i in range(n, FRESH_CONNECTIONS, 6):
                rid = f"fresh-{i}"
                r = httpx.get(api.base + "/healthz", headers={"X-Request-ID": rid}, timeout=10)  # own connection
                with lock:
                    fresh_ids.append(rid)
                    fresh_status[r.status_code] += 1
                assert r.headers["x-request-id"] == rid
                time.sleep(LOAD_SECONDS / FRESH_CONNECTIONS * 3)

        threads = [threading.Thread(target=fresh, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        time.sleep(LOAD_SECONDS)
        load.finish()
        for t in threads:
            t.join(30)
        # The kernel does not promise to spread accepts (an idle worker's event loop may win them all on a
        # loaded machine): keep opening fresh connections, bounded, until the access log shows both workers.
        extra = time.monotonic() + MORE_FRESH_SECONDS
        while len(pids_of(api.log, fresh_ids)) < 2 and time.monotonic() < extra:
            rid = f"fresh-{len(fresh_ids)}"
            r = httpx.get(api.base + "/healthz", headers={"X-Request-ID": rid}, timeout=10)
            fresh_ids.append(rid)
            fresh_status[r.status_code] += 1
            time.sleep(0.05)
        deployment.wait_projections()
        found = scrape(api.base, scraper)
        leaders = sum(v for _, v in found.get("contracts_scheduler_leader", []))
        api.stop()
        runner.stop()
    finally:
        deployment.stop_all()

    assert fresh_status == Counter({200: len(fresh_ids)}) and len(fresh_ids) >= FRESH_CONNECTIONS
    outcomes = load.outcomes()
    assert outcomes["error"] == outcomes["refused"] == outcomes["gave_up"] == 0, (outcomes, load.tally.samples)

    # both workers served: each request's line names its process
    lines = access_lines(api.log)
    by_id = {str(line["request_id"]): line for line in lines}
    fresh_pids = Counter(by_id[rid]["pid"] for rid in fresh_ids)
    all_pids = Counter(line["pid"] for line in lines)
    assert len(fresh_pids) == 2 and api.pid not in fresh_pids, fresh_pids  # two workers, not the supervisor
    assert set(all_pids) == set(fresh_pids)

    # nothing lost, nothing doubled, read models = rebuild
    effects = count_effects(deployment, load.sent)
    assert not effects.lost, f"acknowledged but not stored: {effects.lost[:5]}"
    assert not effects.duplicates, f"stored more than once: {effects.duplicates}"
    incremental, rebuilt, _ = deployment.projections_vs_rebuild()
    assert incremental == rebuilt, dump_difference(incremental, rebuilt)

    # /metrics adds up both workers: its counts are the answers the clients got, and the lines written
    answers = Counter(what for _, _, what in load.timeline)
    applied = sum(1 for s in load.sent if s.kind == "apply" for what in s.statuses if what == 201)
    changed = sum(1 for s in load.sent if s.kind == "contractor" for what in s.statuses if what == 200)
    assert applied + changed == answers[201] + answers[200]
    assert requests_counted(found, "POST", "/v1/contracts", "201") == applied
    assert requests_counted(found, "POST", "/v1/contracts/{contract_id}/contractor", "200") == changed
    assert sum(1 for line in lines if line["route"] == "/v1/contracts" and line["status"] == 201) == applied
    assert leaders == 1  # one scheduler leads (each worker runs one; the advisory lock elects)
    logs = api.log.read_text(errors="replace") + runner.log.read_text(errors="replace")
    assert key not in logs and scraper not in logs  # (cli.log holds them: `keys create` printed them)
    assert "Exception in ASGI application" not in logs and "unhandled error" not in logs

    record_figures("workers_live", {
        "workers": 2, "commands": len(load.sent), "acknowledged": effects.acknowledged,
        "requests_per_worker": dict(sorted(all_pids.items())), "fresh_connections_per_worker": list(
            fresh_pids.values()), "answers": {str(k): v for k, v in answers.items()},
        "events_lost": len(effects.lost), "duplicates": len(effects.duplicates), "scheduler_leaders": leaders,
        "total_s": round(time.monotonic() - started, 1)})
