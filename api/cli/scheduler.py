"""``contracts scheduler`` (the deadline scheduler as its own process) and ``contracts sweep``
(one sweep now, with a progress bar). Settings come from ``CONTRACTS_*`` environment variables.

Both elect a leader first (``infrastructure.scheduler``, built by ``infrastructure.bootstrap``):
on PostgreSQL several schedulers may run, exactly one sweeps at a time. The deadlines come from
the read models, so something must run the projections: on SQLite these commands run them
in-process by default; on PostgreSQL run ``contracts projections run`` (or pass
``--run-projections``).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from datetime import date
from types import FrameType

from api.cli import emit, metrics_flags, start_metrics
from application.sweep import SweepProgress, SweepReport
from infrastructure.bootstrap import Process, bootstrap, build_scheduler
from infrastructure.scheduler import default_interval

log = logging.getLogger("contracts.scheduler")

EXIT_NOT_LEADER = 3


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("scheduler", help="run the deadline scheduler (renewals, overdue, suspension, deletion ...)")
    p.add_argument("--interval", type=float, default=None,
                   help="seconds between sweeps (default 60; 2 in sandbox mode)")
    p.add_argument("--once", action="store_true", help="one tick: sweep if this process is the leader, then exit")
    p.add_argument("--json", action="store_true", help="with --once: print the report as JSON")
    metrics_flags(p)
    _projection_flag(p)
    p.set_defaults(func=_scheduler)

    s = sub.add_parser("sweep", help="fire every deadline due up to today now (progress bar)")
    s.add_argument("--until", type=date.fromisoformat, default=None,
                   help="only deadlines due on or before this date (YYYY-MM-DD; not after today)")
    s.add_argument("--force", action="store_true",
                   help="sweep even if another scheduler is the leader (safe: the sweep is idempotent)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--json", action="store_true", help="print the report as JSON (implies --no-progress)")
    _projection_flag(s)
    s.set_defaults(func=_sweep)


def _projection_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-projections", action=argparse.BooleanOptionalAction, default=None,
                   help="run the projection runner in this process (default: yes on SQLite, no on PostgreSQL)")


def _process(args: argparse.Namespace) -> Process:
    """Application, API store (sandbox clock), clock and read models of this CLI process, with the
    projection runner started when asked (default: on SQLite)."""
    process = bootstrap(args.settings, api_store=True)  # a sandbox store's clock (build_clock)
    run = process.read_models.in_process if args.run_projections is None else args.run_projections
    if run:
        process.read_models.start_runner()
    return process


def _exit_code(report: SweepReport | None) -> int:
    if report is None:
        return EXIT_NOT_LEADER
    return 0 if report.complete and not report.failures else 1


def _scheduler(args: argparse.Namespace) -> int:
    start_metrics(args)
    parts = _process(args)
    try:
        interval = args.interval or default_interval(parts.settings.mode)
        scheduler = build_scheduler(parts.services, parts.read_models, parts.clock, interval_seconds=interval)
        log.info("deadline scheduler for %s (%s mode, clock %s)", parts.settings.database_label(),
                 parts.settings.mode, type(parts.clock).__name__)
        if args.once:
            report = scheduler.tick()
            scheduler.shutdown()
            if report is None:
                emit(args, {"leader": False, "lock": scheduler.lock.describe()},
                     f"not the leader: another scheduler holds the {scheduler.lock.describe()}")
            else:
                emit(args, {"leader": True, **sweep_json(report)}, report.summary())
            return _exit_code(report)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: stopping (a running sweep stops at its next check)", signum)
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, on_signal)
        scheduler.run_forever()
        return 0
    finally:
        parts.close()


class _Bar(SweepProgress):
    """tqdm bar whose total grows as passes find more deadlines."""

    def __init__(self, disable: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit="deadline", desc="sweep", disable=disable, smoothing=0.1)

    def found(self, count: int) -> None:
        self.bar.total = (self.bar.total or 0) + count
        self.bar.refresh()

    def done(self, count: int, kind: str, due_on: date) -> None:
        self.bar.set_postfix_str(f"{due_on} {kind}", refresh=False)
        self.bar.update(count)

    def close(self) -> None:
        self.bar.close()


def sweep_json(report: SweepReport) -> dict[str, object]:
    """The sweep report as JSON: figures, fired per kind, and each failure."""
    return {"today": report.today.isoformat(), "until": report.until.isoformat(), "fired": report.fired,
            "events": report.events, "already_done": report.noop, "retried": report.retried,
            "by_kind": dict(report.by_kind), "passes": report.passes, "complete": report.complete,
            "stopped": report.stopped, "seconds": round(report.seconds, 3),
            "failures": [{"kind": f.kind, "aggregate_id": str(f.aggregate_id), "due_on": f.due_on.isoformat(),
                          "attempts": f.attempts, "error": f.error} for f in report.failures]}


def _sweep(args: argparse.Namespace) -> int:
    parts = _process(args)
    scheduler = build_scheduler(parts.services, parts.read_models, parts.clock)
    bar = _Bar(disable=args.no_progress or args.json)
    try:
        leader = scheduler.lock.acquire()
        if not leader and not args.force:
            print(f"another scheduler is the leader ({scheduler.lock.describe()}) and sweeps on its own; "
                  "use --force to sweep anyway (safe: the sweep is idempotent)")
            return EXIT_NOT_LEADER
        assert scheduler.sweeper is not None
        lock = scheduler.lock

        def should_stop() -> bool:
            return leader and not lock.still_held()

        try:
            report = scheduler.sweeper.run(args.until, should_stop=should_stop, progress=bar)
        except ValueError as exc:  # --until after today
            print(f"error: {exc}")
            return 2
    finally:
        bar.close()
        scheduler.shutdown()
        parts.close()
    if args.json:
        print(json.dumps(sweep_json(report)))
        return _exit_code(report)
    print(report.summary())
    for failure in report.failures:
        print(f"  failed {failure.kind} for {failure.aggregate_id} due {failure.due_on} "
              f"after {failure.attempts} attempt(s): {failure.error}")
    return _exit_code(report)
