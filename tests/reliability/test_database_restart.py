"""Database restart during load: PostgreSQL is stopped (once cleanly, once ``-m immediate``, i.e.
crashed) and started again while clients send commands.

The server stopped is a private one of this test (``PrivateCluster``: initdb + pg_ctl on a free
port), never the shared server other engineers and CI use at the same time; it is always
started again in a ``finally``. Each outage lasts at most a few seconds.

Checked: while the database is down the API answers 503 ``application/problem+json`` with
``Retry-After`` (never 500, never a hang past the pool timeout); after it is back the same API
process (no restart) answers 2xx again by itself; the projection runner survives too; no
acknowledged command is lost or stored twice; the read models equal a clean rebuild.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from reliability_kit import (
    CommandLoad,
    Deployment,
    PrivateCluster,
    assert_problem,
    count_effects,
    dump_difference,
    record_figures,
)

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

OUTAGES = (("fast", 8.0), ("immediate", 8.0))  # pg_ctl stop mode, seconds down (<= 10 s; > the 5 s pool timeout)
PROBES = 2  # threads reading a contract every 0.2 s beside the command load
RECOVERY_BOUND = 20.0  # seconds after the server is back within which a command must succeed again


class Probe(threading.Thread):
    """Reads one contract every 0.2 s and notes (sent, answered, status or error) of each read."""

    def __init__(self, base: str, key: str, path: str) -> None:
        super().__init__(daemon=True)
        self.base, self.key, self.path = base, key, path
        self.stop = threading.Event()
        self.seen: list[tuple[float, float, object]] = []
        self.bad: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers={"X-API-Key": self.key}, timeout=30) as http:
            while not self.stop.is_set():
                t0 = time.monotonic()
                try:
                    r = http.get(self.path)
                except httpx.TransportError as exc:
                    self.seen.append((t0, time.monotonic(), type(exc).__name__))
                else:
                    self.seen.append((t0, time.monotonic(), r.status_code))
                    if r.status_code == 503:
                        try:
                            assert_problem(r, 503)
                            assert r.headers.get("retry-after")
                        except AssertionError as exc:
                            self.bad.append(str(exc))
                    elif r.status_code != 200:
                        self.bad.append(f"{r.status_code}: {r.text[:200]}")
                self.stop.wait(0.2)


def test_database_stopped_and_started_during_load(private_pg: PrivateCluster, tmp_path: Path) -> None:
    started = time.monotonic()
    with psycopg.connect(private_pg.admin_dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE contracts")
    deployment = Deployment(f"postgresql://postgres@127.0.0.1:{private_pg.port}/contracts", tmp_path,
                            mode="production")
    load: CommandLoad | None = None
    probes: list[Probe] = []
    # (mode, stopped, start begun, start returned): the server accepts connections somewhat before
    # ``pg_ctl start -w`` returns, so only what is answered before the start begins must be 503
    windows: list[tuple[str, float, float, float]] = []
    recovery: list[float] = []
    try:
        key = deployment.create_key("billing", "restart-client")
        runner, api = deployment.runner(), deployment.api()
        api.start_ready()  # first: it creates the tables (two processes creating them at once collide)
        runner.start()
        pid = api.pid
        load = CommandLoad(api.base, key, "PGDOWN", workers=3, pause=0.02)
        load.start()
        time.sleep(2.0)
        deadline = time.monotonic() + 30
        while not (acked := [s.contract_id for s in list(load.sent) if s.outcome == "ack"]):
            assert time.monotonic() < deadline, "no command succeeded before the outage"
            time.sleep(0.1)
        home = acked[0]
        probes = [Probe(api.base, key, f"/v1/contracts/{home}") for _ in range(PROBES)]
        for probe in probes:
            probe.start()
        time.sleep(0.5)
        for mode, seconds in OUTAGES:
            try:
                private_pg.stop(mode)
                down_at = time.monotonic()
                time.sleep(seconds)
            finally:
                starting_at = time.monotonic()
                if not private_pg.running():
                    private_pg.start()
            up_at = time.monotonic()
            windows.append((mode, down_at, starting_at, up_at))
            while not any(t0 > up_at and what in (200, 201) for t0, _, what in list(load.timeline)):
                assert time.monotonic() - up_at < RECOVERY_BOUND, f"no 2xx {RECOVERY_BOUND}s after the restart"
                time.sleep(0.05)
            recovery.append(min(t1 for t0, t1, what in list(load.timeline)
                                if t0 > up_at and what in (200, 201)) - up_at)
            time.sleep(3.0)
        load.finish()
        for probe in probes:
            probe.stop.set()
            probe.join(40)
        assert api.alive and api.pid == pid and api.starts == 1, "the API process was restarted"
        assert runner.alive and runner.starts == 1, "the projection runner died"
        deployment.wait_projections()
        api.stop()
        runner.stop()
    finally:
        if load is not None:
            load.finish()
        for probe in probes:
            probe.stop.set()
        deployment.stop_all()
        if not private_pg.running():
            private_pg.start()

    outcomes = load.outcomes()
    assert outcomes["error"] == outcomes["refused"] == outcomes["gave_up"] == 0, (outcomes, load.tally.samples)
    answers = list(load.timeline) + [seen for probe in probes for seen in probe.seen]
    assert not [bad for probe in probes for bad in probe.bad]
    assert not [what for _, _, what in answers if isinstance(what, str)], "connection errors: the API died?"
    down_answers = []
    for mode, down_at, starting_at, up_at in windows:  # requests sent and answered while the server was down
        inside = [what for t0, t1, what in answers if t0 >= down_at and t1 < starting_at]
        overlapping = [(round(t0 - down_at, 2), round(t1 - down_at, 2), what) for t0, t1, what in answers
                       if t1 > down_at and t0 < up_at]
        # answered while it was down: at least one 503, and nothing but 503 (or a success already committed).
        # A request need not also be *sent* inside: every client may be mid-request when the stop begins
        # and wait out the pool timeout, then send its next request too late to be answered inside.
        answered_down = [what for t0, t1, what in answers if down_at <= t1 < starting_at]
        assert set(inside) <= {503} and 503 in answered_down, (mode, round(up_at - down_at, 2), overlapping)
        # 2xx: a command committed before the stop may be answered after its read-your-writes wait
        assert set(answered_down) <= {200, 201, 503}, (mode, overlapping)
        down_answers.extend(what for what in answered_down if what == 503)
    effects = count_effects(deployment, load.sent)
    assert not effects.lost, f"acknowledged but not stored: {effects.lost[:5]}"
    assert not effects.duplicates, f"stored more than once: {effects.duplicates}"
    incremental, rebuilt, _ = deployment.projections_vs_rebuild()
    assert incremental == rebuilt, dump_difference(incremental, rebuilt)
    logs = deployment.logs()
    assert "Exception in ASGI application" not in logs and "unhandled error" not in logs

    record_figures("database_restart", {
        "commands": len(load.sent), "acknowledged": effects.acknowledged, "answers_503": load.tally["503"],
        "answers_503_while_down": len(down_answers),
        "probe_reads": sum(len(p.seen) for p in probes), "unresolved_in_progress": outcomes["unresolved"],
        "stored_unresolved": len(effects.stored_unresolved), "outages": [
            {"mode": m, "down_s": round(u - d, 1)} for m, d, _, u in windows],
        "recovery_s": [round(r, 2) for r in recovery], "api_restarts": 0, "events_lost": len(effects.lost),
        "duplicates": len(effects.duplicates), "total_s": round(time.monotonic() - started, 1)})
