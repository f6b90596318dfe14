"""1. Command append: single-event commands through the application layer at 1, 4 and 16
concurrent clients (threads sharing one application, as in the API process), against a raw
psycopg single-row INSERT per transaction (one connection per client) of a row of the same
shape and size, and against the bare library (``bench/bare_library.py``: a bare ``eventsourcing``
application with a trivial aggregate, the library's defaults) at the same concurrency.
Targets (issue 21): at least 1.5x the bare library at every concurrency, at least 0.3x the raw
INSERT at 16 clients, at most 0.5 ms of CPU per command.

The command is ``change_contractor`` (one ``ContractorInfoChanged`` event: load the contract,
seal the personal fields, append with its hash-chain link). Each client round-robins over
its own contracts so histories stay short. Also measured, for comparison: the same commands
with group commit switched off (the chained library recorder, one transaction per command).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.bare_library import bare_application, bare_worker, create_notes
from bench.data import CONTRACTOR, Generator, contract_id
from bench.harness import Row, ScenarioResult, build, median, percentile, scratch_database

NAME = "append"
LEVELS = (1, 4, 16)
RAW_TABLE = "raw_events"


def _drive(clients: int, seconds: float, make_worker: Callable[[int], Callable[[], None]]
           ) -> tuple[float, list[float], float]:
    """Run ``clients`` threads for ``seconds``; returns (operations per second, latencies in s,
    CPU seconds of this process per operation)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]
    errors: list[BaseException] = []

    def loop(index: int) -> None:
        try:
            op = make_worker(index)
            own = latencies[index]
            barrier.wait()
            while True:
                start = time.perf_counter()
                if start >= stop_at[0]:
                    return
                op()
                own.append(time.perf_counter() - start)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            raise

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600
    barrier.wait()
    began, cpu = time.perf_counter(), time.process_time()
    stop_at[0] = began + seconds
    for t in threads:
        t.join(seconds + 120)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]!r}") from errors[0]
    flat = [x for per in latencies for x in per]
    return len(flat) / elapsed, flat, cpu / max(1, len(flat))


def _service_worker(app: Any, per_client: int, base: int) -> Callable[[int], Callable[[], None]]:
    """Client ``index`` round-robins over contracts ``base + index * per_client ...``: every
    measurement gets its own fresh contracts (4 events each), so histories do not grow from one
    measurement to the next."""
    at = datetime.now(UTC)

    def make(index: int) -> Callable[[], None]:
        ids = [contract_id(base + index * per_client + k) for k in range(per_client)]
        counter = [0]

        def op() -> None:
            n = counter[0]
            counter[0] = n + 1
            app.change_contractor(ids[n % per_client], {**CONTRACTOR, "contact_name": f"Person {index}-{n}"}, at)
        return op
    return make


def _raw_worker(dsn: str, state: bytes, topic: str, conns: list[Any]) -> Callable[[int], Callable[[], None]]:
    def make(index: int) -> Callable[[], None]:
        conn = psycopg.connect(dsn, autocommit=True)  # one round trip: the INSERT is its own transaction
        conns.append(conn)
        oid = uuid.uuid4()
        counter = [0]
        statement = (f"INSERT INTO {RAW_TABLE} (originator_id, originator_version, topic, state) "
                     "VALUES (%s, %s, %s, %s)")

        def op() -> None:
            counter[0] += 1
            conn.execute(statement, (oid, counter[0], topic, state), prepare=True)
        return op
    return make


def run(quick: bool, rounds: int) -> ScenarioResult:
    seconds = 0.4 if quick else 3.0
    per_client = 10 if quick else 300
    rounds = 1 if quick else rounds
    slots = rounds * (sum(LEVELS) + max(LEVELS))  # clients over all measurements
    result = ScenarioResult(NAME, "Command append: single-event commands vs the bare library and a raw single-row "
                            "INSERT per transaction",
                            {"levels": list(LEVELS), "seconds_per_measurement": seconds, "rounds": rounds,
                             "contracts": slots * per_client, "command": "change_contractor"})
    with scratch_database(NAME) as dsn:
        services = build(dsn)
        plain = build(dsn, pg_group_commit=False)
        bare = bare_application(dsn)
        text = json.dumps(CONTRACTOR)
        try:
            Generator(services.app, months=1).write(dsn, slots * per_client)
            bare_slots = rounds * sum(LEVELS)
            create_notes(bare, list(range(bare_slots * per_client)), text)
            bare_base = 0
            base = 0
            sample = services.app.change_contractor(contract_id(0), CONTRACTOR, datetime.now(UTC))
            stored = services.app.recorder.select_events(sample.aggregate_id, gt=sample.version - 1)[0]
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"CREATE TABLE {RAW_TABLE} (originator_id uuid NOT NULL, originator_version bigint "
                             "NOT NULL, topic text, state bytea, notification_id bigserial, "
                             "PRIMARY KEY (originator_id, originator_version))")
                conn.execute(f"CREATE UNIQUE INDEX ON {RAW_TABLE} (notification_id)")
                conn.execute("VACUUM ANALYZE")
            per_level: dict[int, dict[str, list[Any]]] = {c: {"svc": [], "raw": [], "plain": [], "svc_lat": [],
                                                               "raw_lat": [], "bare": [], "bare_cpu": []}
                                                           for c in LEVELS}
            recorder = services.app.recorder
            for _ in range(rounds):
                for clients in LEVELS:
                    raw_conns: list[Any] = []
                    rate, lat, cpu = _drive(clients, seconds, _raw_worker(dsn, stored.state, stored.topic, raw_conns))
                    per_level[clients].setdefault("raw_cpu", []).append(cpu)
                    for c in raw_conns:
                        c.close()
                    per_level[clients]["raw"].append(rate)
                    per_level[clients]["raw_lat"].extend(lat)
                    rate, lat, cpu = _drive(clients, seconds, bare_worker(bare, per_client, bare_base, text))
                    bare_base += clients * per_client
                    per_level[clients]["bare"].append(rate)
                    per_level[clients]["bare_cpu"].append(cpu)
                    before = (getattr(recorder, "batches", 0), getattr(recorder, "requests", 0))
                    rate, lat, cpu = _drive(clients, seconds, _service_worker(services.app, per_client, base))
                    base += clients * per_client
                    per_level[clients].setdefault("svc_cpu", []).append(cpu)
                    per_level[clients]["svc"].append(rate)
                    per_level[clients]["svc_lat"].extend(lat)
                    per_level[clients].setdefault("batching", []).append(
                        (getattr(recorder, "requests", 0) - before[1]) / max(1, getattr(recorder, "batches", 0)
                                                                             - before[0]))
                    if clients == max(LEVELS):
                        rate, _, _ = _drive(clients, seconds, _service_worker(plain.app, per_client, base))
                        base += clients * per_client
                        per_level[clients]["plain"].append(rate)
            for clients in LEVELS:
                d = per_level[clients]
                svc, raw, lib = median(d["svc"]), median(d["raw"]), median(d["bare"])
                cpu_ms = median(d["svc_cpu"]) * 1000
                row = Row(f"{clients} client{'s' if clients > 1 else ''} vs bare library", "commands/s", svc, lib,
                          target=">= 1.5x bare library, CPU <= 0.5 ms/command",
                          met=svc >= 1.5 * lib and cpu_ms <= 0.5)
                row.extra = {"service_p50_ms": round(percentile(d["svc_lat"], 50) * 1000, 2),
                             "service_p99_ms": round(percentile(d["svc_lat"], 99) * 1000, 2),
                             "raw_p50_ms": round(percentile(d["raw_lat"], 50) * 1000, 2),
                             "raw_p99_ms": round(percentile(d["raw_lat"], 99) * 1000, 2),
                             "commands_per_transaction": round(median(d["batching"]), 2),
                             "service_cpu_ms_per_command": round(cpu_ms, 3),
                             "bare_cpu_ms_per_command": round(median(d["bare_cpu"]) * 1000, 3),
                             "raw_cpu_ms_per_insert": round(median(d["raw_cpu"]) * 1000, 3),
                             "raw_inserts_per_s": round(raw), "ratio_to_raw": round(svc / raw, 3),
                             "service_rounds": [round(x) for x in d["svc"]],
                             "bare_rounds": [round(x) for x in d["bare"]], "raw_rounds": [round(x) for x in d["raw"]]}
                result.rows.append(row)
                target = ">= 0.3x raw" if clients == max(LEVELS) else "(reference)"
                result.rows.append(Row(f"{clients} client{'s' if clients > 1 else ''} vs raw INSERT", "commands/s",
                                       svc, raw, target=target,
                                       met=svc >= 0.3 * raw if clients == max(LEVELS) else None))
            top = per_level[max(LEVELS)]
            result.rows.append(Row(f"{max(LEVELS)} clients, group commit off", "commands/s", median(top["plain"]),
                                   median(top["raw"]), target="(reference)", met=None))
        finally:
            services.close()
            plain.close()
            bare.close()
    return result
