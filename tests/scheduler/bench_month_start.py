"""Month-start benchmark (not collected by pytest): N monthly contracts start on 2026-04-01.

    .venv/bin/python tests/scheduler/bench_month_start.py --store sqlite --n 20000
    .venv/bin/python tests/scheduler/bench_month_start.py --store postgres --n 20000 [--batch-size 1]

Prints the sweep's month-start rate (contracts/s), batched (one transaction per chunk) and,
with ``--batch-size 1``, one transaction per contract for comparison. The clock is a FixedClock.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the support package

from application.clock import FixedClock  # noqa: E402
from application.sweep import Sweeper  # noqa: E402
from domain.calendar import JST  # noqa: E402
from domain.contract import BillingCycle, Contract  # noqa: E402
from infrastructure.bootstrap import (
    build_read_models,  # noqa: E402
    build_services,  # noqa: E402
)
from infrastructure.settings import Settings  # noqa: E402


def jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=JST).astimezone(UTC)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("application.sweep.fired").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(sqlite_path=Path(tmp) / "bench.sqlite", database_url=None)
        env = None
        cleanup = None
        if args.store == "postgres":
            import psycopg
            from psycopg import sql
            from support.postgres import eventsourcing_env, find_postgres

            target = find_postgres()
            assert not isinstance(target, str), target
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(target.dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            env = eventsourcing_env(target.dsn, schema=schema)

            def cleanup() -> None:
                with psycopg.connect(target.dsn, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

        services = build_services(settings, env=env)
        app = services.app
        try:
            started = time.perf_counter()
            plan = app.catalog.plan("kintone", "light")
            batch = []
            for n in range(args.n):
                c = Contract.open(f"BENCH{n:07d}", "kintone", "")
                c.apply(plan, BillingCycle.MONTHLY, 5, {"name": f"Bench {n}"}, jst(2026, 3, 9))
                c.approve(jst(2026, 3, 24))
                batch.append(c)
                if len(batch) == 1000:
                    app.save(*batch)
                    batch = []
            if batch:
                app.save(*batch)
            print(f"seeded {args.n} contracts in {time.perf_counter() - started:.1f}s")
            models = build_read_models(services, in_process=True)
            started = time.perf_counter()
            models.runner.catch_up()
            print(f"projected in {time.perf_counter() - started:.1f}s")
            models.start_runner()
            clock = FixedClock(jst(2026, 4, 1, 6))
            sweeper = Sweeper(app, models, clock, batch_size=args.batch_size, progress_every=5000)
            report = sweeper.run()
            rate = report.by_kind["month_start"] / report.seconds
            print(f"{args.store}: {report.summary()}")
            print(f"RESULT {args.store} n={args.n} batch={args.batch_size}: month_start "
                  f"{report.by_kind['month_start']} contracts in {report.seconds:.1f}s = {rate:,.0f} contracts/s "
                  "(including waiting for the projections)")
            models.stop()
        finally:
            services.close()
            if cleanup is not None:
                cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
