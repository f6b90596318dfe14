"""``contracts projections {run,rebuild,status}``: the read-model projections (spec 11).

Settings come from ``CONTRACTS_*`` environment variables (``infrastructure.settings.Settings``,
read once by ``api.cli.main``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from api.cli import emit, json_flag, metrics_flags, run_until_stopped
from application.projections.ports import DamagedRow
from infrastructure.bootstrap import Services, build_read_models, build_services
from infrastructure.read_side import RebuildFailed

log = logging.getLogger("contracts.projections")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("projections", help="read-model projections: billing, outage credits, deadlines")
    cmds = p.add_subparsers(dest="projections_command", required=True)

    run = cmds.add_parser("run", help="follow the event stream and keep the read models up to date (until stopped)")
    run.add_argument("--batch-size", type=int, default=500, help="events per transaction (default 500)")
    run.add_argument("--poll-interval", type=float, default=0.2, help="seconds between polls when idle")
    metrics_flags(run)
    run.set_defaults(func=_run)

    rebuild = cmds.add_parser("rebuild", help="recompute every read model from the event stream")
    rebuild.add_argument("--batch-size", type=int, default=5000, help="events per transaction (default 5000)")
    rebuild.add_argument("--no-progress", action="store_true", help="no progress bar")
    json_flag(rebuild)
    rebuild.set_defaults(func=_rebuild)

    status = cmds.add_parser("status", help="print the projections' position and the log's last position")
    json_flag(status)
    status.set_defaults(func=_status)


def _run(args: argparse.Namespace) -> int:
    settings = args.settings

    def follow(services: Services, stop: threading.Event) -> None:
        models = build_read_models(services, batch_size=args.batch_size, poll_interval=args.poll_interval)
        log.info("projections following %s from position %d", settings.database_label(), models.runner.position())
        models.runner.run_forever(stop)

    return run_until_stopped(args, log, "stopping after the current batch", lambda: build_services(settings),
                             follow, lambda services: services.close())


def print_damaged(damaged: list[DamagedRow]) -> None:
    """The events the projections did not apply (undecodable, and the later ones of their aggregates)."""
    if damaged:
        print(f"{len(damaged)} events not applied (the projections stopped their aggregates; "
              "`contracts audit verify` names the damage):", file=sys.stderr)
    for d in damaged:
        print(f"  position {d.position}: {d.event} version {d.version} of {d.aggregate_id}: {d.reason}",
              file=sys.stderr)


def damaged_json(d: DamagedRow) -> dict[str, object]:
    return {"position": d.position, "event": d.event, "version": d.version, "aggregate_id": str(d.aggregate_id),
            "reason": d.reason}


def _report(args: argparse.Namespace, damaged: list[DamagedRow], document: dict[str, object], text: str) -> None:
    """``document`` with the ``damaged`` events (``--json``), else ``text`` and the damaged events on stderr."""
    emit(args, {**document, "damaged": [damaged_json(d) for d in damaged]}, text)
    if not args.json:
        print_damaged(damaged)


def _rebuild(args: argparse.Namespace) -> int:
    settings = args.settings
    services = build_services(settings)
    try:
        models = build_read_models(services)
        started = time.perf_counter()
        try:
            applied = models.runner.rebuild(progress=not (args.no_progress or args.json), batch_size=args.batch_size)
        except RebuildFailed as exc:
            print(f"contracts projections rebuild: {exc}", file=sys.stderr)
            return 1
        elapsed = time.perf_counter() - started
        rate = applied / elapsed if elapsed > 0 else 0.0
        damaged = models.damaged_events()
        _report(args, damaged, {"events": applied, "seconds": round(elapsed, 3), "events_per_second": round(rate),
                                "position": models.position()},
                f"rebuilt read models from {applied} events in {elapsed:.1f}s ({rate:,.0f} events/s); "
                f"position {models.position()}")
    finally:
        services.close()
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = args.settings
    services = build_services(settings)
    try:
        models = build_read_models(services)
        last = services.app.recorder.max_notification_id() or 0
        position = models.position()
        damaged = models.damaged_events()
        _report(args, damaged, {"position": position, "last": last, "behind": last - position,
                                "database": settings.database_label()},
                f"read models at position {position} of {last} ({last - position} behind) in "
                f"{settings.database_label()}")
    finally:
        services.close()
    return 0
