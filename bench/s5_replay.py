"""5. Auditor replay: the state of a contract as of any instant, for a contract with ten years
of monthly history (one renewal and one payment a month plus a yearly contractor change,
~250 events). Target: under 5 ms (p99), with snapshots (``infrastructure.snapshots``: every
10 versions, taken by a background job, sealed with the contract's key).

Measured: ``ReadModelsImpl.contract_as_of(id, at=instant)`` (the API's ``?as_of=``: version
lookup in the timestamp index, nearest snapshot, events after it) at random instants of the
history; the same without snapshots (full replay), and as the raw reference, one SELECT of
all the contract's event rows.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from bench.data import CONTRACTOR
from bench.harness import Row, ScenarioResult, build, percentile, scratch_database
from domain.calendar import JST, Month
from domain.contract import BillingCycle

NAME = "replay"


def _history(app: Any, years: int) -> tuple[uuid.UUID, int]:
    a = app  # ContractsApplication
    start = Month(2016, 1)
    result = a.open_contract("AUDIT-1", "kintone", "standard", 10, CONTRACTOR,
                             datetime(2016, 1, 10, 10, tzinfo=JST), cycle=BillingCycle.MONTHLY)
    cid = result.aggregate_id
    a.approve(cid, datetime(2016, 1, 15, 10, tzinfo=JST))
    for k in range(1, 12 * years + 1):
        month = start.plus(k)
        a.advance(cid, month)
        contract = a.get_contract(cid)
        invoice = contract.ledger.invoice_for_month(month)
        paid_on = date(month.year, month.month, 20)
        at = datetime(month.year, month.month, 20, 12, tzinfo=JST)
        if invoice is not None and invoice.outstanding > 0:
            a.record_payment(cid, invoice.invoice_id, invoice.outstanding, paid_on, at)
        if k % 12 == 0:
            a.change_contractor(cid, {**CONTRACTOR, "contact_name": f"Contact {k // 12}"}, at)
    return cid, int(a.get_contract(cid).version)


def run(quick: bool, rounds: int) -> ScenarioResult:
    years, samples = (3, 40) if quick else (10, 400)
    result = ScenarioResult(NAME, "Auditor replay: contract state as of an instant (10 years of monthly history)",
                            {"years": years, "samples": samples})
    from infrastructure.bootstrap import build_read_models
    from infrastructure.snapshots import take_snapshots

    with scratch_database(NAME) as dsn:
        services = build(dsn)
        try:
            app = services.app
            cid, version = _history(app, years)
            models = build_read_models(services)
            models.runner.catch_up()
            started = time.perf_counter()
            taken = take_snapshots(app, [cid])
            snapshot_job = time.perf_counter() - started
            events = app.recorder.select_events(cid)
            first = events[0]
            first_at = app.mapper.to_domain_event(first).timestamp
            last_at = app.mapper.to_domain_event(events[-1]).timestamp
            rng = random.Random(7)
            span = (last_at - first_at).total_seconds()
            instants = [first_at + timedelta(seconds=rng.uniform(0, span)) for _ in range(samples)]
            store = models.snapshots

            def measure() -> list[float]:
                out = []
                for at in instants:
                    t0 = time.perf_counter()
                    contract = models.contract_as_of(cid, at=at)
                    out.append(time.perf_counter() - t0)
                    assert contract is not None
                return out

            measure()  # warm: key cache, prepared statements
            with_snapshots = measure()
            models.snapshots = None
            without = measure()
            models.snapshots = store
            # correctness spot check: snapshot path == full replay
            for at in instants[:10]:
                a = models.contract_as_of(cid, at=at)
                models.snapshots = None
                b = models.contract_as_of(cid, at=at)
                models.snapshots = store
                assert a is not None and b is not None and a.version == b.version
                assert a.ledger.invoices.keys() == b.ledger.invoices.keys() and a.contractor == b.contractor
            raw: list[float] = []
            with psycopg.connect(dsn, autocommit=True) as conn:
                for _ in range(samples):
                    t0 = time.perf_counter()
                    conn.execute("SELECT * FROM contracts_events WHERE originator_id = %s ORDER BY originator_version",
                                 (cid,), prepare=True).fetchall()
                    raw.append(time.perf_counter() - t0)
        finally:
            services.close()
    ms = 1000.0
    p99 = percentile(with_snapshots, 99) * ms
    row = Row("as-of p99, snapshots", "ms", p99, percentile(raw, 99) * ms, higher_is_better=False,
              target="< 5 ms", met=p99 < 5.0)
    row.extra = {"p50_ms": round(percentile(with_snapshots, 50) * ms, 3), "max_ms": round(max(with_snapshots) * ms, 3),
                 "raw_p50_ms": round(percentile(raw, 50) * ms, 3), "events": version, "snapshots": taken,
                 "snapshot_job_s": round(snapshot_job, 3)}
    result.rows.append(row)
    row = Row("as-of p99, no snapshots", "ms", percentile(without, 99) * ms, percentile(raw, 99) * ms,
              higher_is_better=False, target="(reference)", met=None)
    row.extra = {"p50_ms": round(percentile(without, 50) * ms, 3), "max_ms": round(max(without) * ms, 3)}
    result.rows.append(row)
    result.notes.append(f"{version} events; {taken} snapshots (every 10 versions) taken in {snapshot_job:.2f}s "
                        f"by the background job; business months {Month(2016, 1)}..{Month(2016, 1).plus(12 * years)}; "
                        f"instants drawn uniformly between the first and last recorded event")
    return result
