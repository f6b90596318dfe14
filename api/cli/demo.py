"""``contracts demo``: a scripted lifecycle on a temporary embedded SQLite store, told in date
order, with the real deadline scheduler firing what falls due (``application.demo``): the same
leader-elected ``DeadlineScheduler`` over in-process read models that ``contracts serve`` runs,
ticked each time the script moves the business clock forward (as a sandbox client moves it)."""

from __future__ import annotations

import argparse
import logging
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from application.clock import FixedClock
from application.demo import run_demo
from application.sweep import SweepReport
from infrastructure.bootstrap import build_read_models, build_scheduler, build_services
from infrastructure.scheduler import InProcessLock


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run a scripted contract lifecycle with the real scheduler and print what happened")
    p.add_argument("--db", type=Path, default=None,
                   help="SQLite file to use (default: a fresh temporary file)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(logging.WARNING)  # the story on stdout, unmixed with the INFO lines
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "demo.sqlite"
        settings = args.settings.model_copy(update={"sqlite_path": path, "database_url": None, "mode": "sandbox"})
        services = build_services(settings)
        clock = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))
        read_models = build_read_models(services, clock=clock, in_process=True, start_runner=True,
                                        poll_interval=0.02)
        scheduler = build_scheduler(services, read_models, clock, lock=InProcessLock())

        def sweep() -> SweepReport | None:
            return scheduler.tick()  # the scheduler's job: sweep as the leader, up to the clock's today

        def due_dates(until: date) -> list[date]:
            read_models.wait_for(services.app.recorder.max_notification_id() or 0, 30)
            return sorted({d.due_on for d in read_models.deadlines_until(until)})

        try:
            for line in run_demo(services.app, clock, sweep, due_dates):
                print(line, flush=True)
        finally:
            scheduler.shutdown()
            read_models.stop()
            services.close()
    return 0
