"""``python -m bench.decode_ab [--rounds R] [--repeat N]``: issue 21's interleaved A/B of the stored
events' decoding, in one process: CPU per decoded event (``time.process_time``).

The events are real stored events read back from PostgreSQL: a realistic contract built by
commands (monthly kintone standard x 10 users, a year of month starts, payments of its invoices,
a change of users, a new contractor: ~50 events, personal fields sealed) and the month start's
bench contracts (``bench.data.Generator``, 5 events each). Arms, alternated (A B, then B A, ...):

- A: the library's ``JSONTranscoder`` (the object hook of ``json``), same registrations;
- B: the application's transcoder (``application.transcodings.FastJSONTranscoder``).

Each arm decodes every event ``--repeat`` times through the mapper (``to_domain_event``: the
sealed fields opened) and, separately, the stored bytes through the transcoder only. Both arms'
events are compared first (same class, same attributes), so a figure is never of a wrong decode.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import JSONTranscoder

from bench.data import Generator, contract_id
from bench.harness import build, scratch_database
from domain.calendar import Month

CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
              "contact_name": "Hanako Example", "contact_email": "a@example.invalid"}


def realistic_contract(app: Any) -> uuid.UUID:
    at = datetime(2026, 3, 24, 1, 0, tzinfo=UTC)
    cid: uuid.UUID = app.open_contract(f"CUST-{uuid.uuid4().hex[:12]}", "kintone", "standard", 10, CONTRACTOR, at,
                                       cycle=_monthly()).aggregate_id
    app.approve(cid, at)
    month = Month(2026, 4)
    for n in range(12):
        app.advance(cid, month)
        contract = app.get_contract(cid)
        for invoice in list(contract.ledger.invoices.values()):
            if invoice.outstanding and n % 3 != 2:  # most paid, a few left open
                paid_at = at + timedelta(days=31 * n + 10)
                app.record_payment(cid, invoice.invoice_id, invoice.outstanding, paid_at.date(), paid_at)
        if n == 4:
            app.request_change(cid, None, 12, None, at + timedelta(days=31 * n + 12))
        if n == 7:
            app.change_contractor(cid, {**CONTRACTOR, "contact_name": "Jiro Example"}, at + timedelta(days=31 * n))
        month = month.plus(1)
    return cid


def _monthly() -> Any:
    from domain.contract import BillingCycle

    return BillingCycle.MONTHLY


def library_mapper(app: Any) -> Any:
    """The application's mapper with the library's ``JSONTranscoder`` (same registrations)."""
    from infrastructure.personal_data import PersonalDataMapper

    transcoder = JSONTranscoder()
    app.register_transcodings(transcoder)
    return PersonalDataMapper(transcoder, keys=app.mapper.keys)


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and vars(a) == vars(b)


def main(rounds: int, repeat: int, bench_contracts: int) -> None:
    with scratch_database("decode_ab") as dsn:
        services = build(dsn)
        app = services.app
        try:
            Generator(app, months=1).write(dsn, bench_contracts)
            cid = realistic_contract(app)
            sets = {"realistic": list(app.recorder.select_events(cid)),
                    "month-start": [e for k in range(bench_contracts)
                                    for e in app.recorder.select_events(contract_id(k))]}
            arms = {"A": library_mapper(app), "B": app.mapper}
            for label, events in sets.items():
                for stored in events:
                    a, b = (arms[arm].to_domain_event(stored) for arm in ("A", "B"))
                    assert same(a, b), (label, stored.topic, stored.originator_version)
                    assert arms["A"].transcoder.decode(stored.state) == arms["B"].transcoder.decode(stored.state)
                figures: dict[tuple[str, str], list[float]] = {}
                for r in range(rounds):
                    for arm in ("A", "B") if r % 2 == 0 else ("B", "A"):
                        mapper = arms[arm]
                        decode, to_domain_event = mapper.transcoder.decode, mapper.to_domain_event
                        cpu = time.process_time()
                        for _ in range(repeat):
                            for stored in events:
                                to_domain_event(stored)
                        cpu = time.process_time() - cpu
                        figures.setdefault((arm, "event"), []).append(cpu / (repeat * len(events)) * 1e6)
                        cpu = time.process_time()
                        for _ in range(repeat):
                            for stored in events:
                                decode(stored.state)
                        cpu = time.process_time() - cpu
                        figures.setdefault((arm, "transcoder"), []).append(cpu / (repeat * len(events)) * 1e6)
                size = sum(len(e.state) for e in events) / len(events)
                print(f"{label}: {len(events)} events, {size:.0f} bytes each on average")
                for (arm, what), cpus in sorted(figures.items(), key=lambda kv: (kv[0][1], kv[0][0])):
                    each = " ".join(f"{c:.1f}" for c in cpus)
                    print(f"  {what:10s} {arm}: {statistics.median(cpus):.2f} us CPU per event (median; {each})")
        finally:
            services.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--bench-contracts", type=int, default=200)
    args = parser.parse_args()
    main(args.rounds, args.repeat, args.bench_contracts)
