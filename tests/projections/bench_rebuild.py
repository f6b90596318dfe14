"""Rebuild throughput against the raw notification read rate (not a test; run by hand).

    .venv/bin/python tests/projections/bench_rebuild.py --contracts 2000 [--pg-dsn postgresql://...]

Builds N monthly contracts advanced over four years (~52 events each), then measures: raw
``select_notifications`` rate, read + decode rate, and ``rebuild`` rate (events/s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from eventsourcing.persistence import Mapper  # noqa: E402
from projection_kit import jst, paid_contract  # noqa: E402

from domain.billing import invoice_id  # noqa: E402
from domain.calendar import Month  # noqa: E402
from infrastructure.bootstrap import (  # noqa: E402
    build_read_models,  # noqa: E402
    build_services,
    postgres_env,
)
from infrastructure.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contracts", type=int, default=2000)
    parser.add_argument("--pg-dsn", default=None, help="postgresql:// URL (a scratch database!)")
    parser.add_argument("--schema", default="public")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--interleaved", action="store_true",
                        help="advance all contracts month by month and pay each invoice (realistic order)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    if args.pg_dsn:
        services = build_services(Settings(database_url=None), env=postgres_env(args.pg_dsn, args.schema))
    else:
        services = build_services(Settings(database_url=None, sqlite_path=Path(tmp) / "bench.sqlite"))
    app = services.app
    if not app.recorder.max_notification_id():
        started = time.perf_counter()
        if args.interleaved:
            ids = [paid_contract(app, f"B-{i}", service="garoon", users=10 + i % 7, until=None)
                   for i in range(args.contracts)]
            month = Month(2026, 4)
            while month <= Month(2030, 3):
                for cid in ids:
                    app.advance(cid, month)
                    inv = app.get_contract(cid).ledger.invoices[invoice_id(cid, str(month))]
                    app.record_payment(cid, inv.invoice_id, inv.total, month.first_day, jst(2030, 4, 1))
                month = month.plus(1)
        else:
            for i in range(args.contracts):
                paid_contract(app, f"B-{i}", service="garoon", users=10 + i % 7, until=Month(2030, 3))
        print(f"wrote {app.recorder.max_notification_id()} events in {time.perf_counter() - started:.1f}s")
    total = app.recorder.max_notification_id() or 0

    def rate(label: str, decode: bool) -> float:
        started, start, n = time.perf_counter(), 1, 0
        while batch := app.recorder.select_notifications(start=start, limit=args.batch):
            if decode:
                for note in batch:
                    Mapper.to_domain_event(app.mapper, note)
            n += len(batch)
            start = batch[-1].id + 1
        r = n / (time.perf_counter() - started)
        print(f"{label}: {r:,.0f} events/s")
        return r

    raw = rate("raw select_notifications", False)
    rate("select + decode", True)
    models = build_read_models(services)
    started = time.perf_counter()
    applied = models.runner.rebuild(progress=False, batch_size=args.batch)
    elapsed = time.perf_counter() - started
    print(f"rebuild: {applied} of {total} events in {elapsed:.1f}s = {applied / elapsed:,.0f} events/s "
          f"({applied / elapsed / raw:.2f}x raw read)")
    services.close()


if __name__ == "__main__":
    main()
