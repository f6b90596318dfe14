"""``contracts webhooks ...``: endpoints, delivery log, redelivery, and the delivery worker
(``run``: its own process, for PostgreSQL; on SQLite ``contracts serve`` runs it). Secrets are
printed once, by ``add`` and ``roll-secret``, and never logged.

``contracts announce ...``: Art. 18 discontinuations and Art. 28 terms changes."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from api.cli import emit, json_flag, metrics_flags, run_until_stopped
from application.actors import Actor, acting_as
from application.notifications.service import delivery_view, endpoint_view, types_view
from infrastructure.bootstrap import Services, WebhookParts, build_services, build_webhooks
from infrastructure.settings import Settings

log = logging.getLogger("contracts.webhooks")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("webhooks", help="signed webhooks: endpoints, deliveries, the delivery worker")
    cmds = p.add_subparsers(dest="webhooks_command", required=True)

    run = cmds.add_parser("run", help="derive and deliver notifications until stopped (several may run)")
    metrics_flags(run)
    run.set_defaults(func=_run)

    for name, helptext, func in (("types", "the notification types and their payload versions", _types),
                                 ("list", "endpoints (never their secrets)", _list),
                                 ("status", "queue position and rows by status", _status)):
        listing = cmds.add_parser(name, help=helptext)
        json_flag(listing)
        listing.set_defaults(func=func)

    add = cmds.add_parser("add", help="register an endpoint; prints its secret once")
    add.add_argument("--url", required=True)
    add.add_argument("--types", required=True, help="comma-separated notification types, or '*' for all")
    add.add_argument("--description", default="")
    add.add_argument("--personal-data", action="store_true", help="may receive personal fields")
    add.set_defaults(func=_add)

    update = cmds.add_parser("update", help="change an endpoint's URL, types, description or personal-data flag")
    update.add_argument("endpoint_id", type=uuid.UUID)
    update.add_argument("--url")
    update.add_argument("--types")
    update.add_argument("--description")
    update.add_argument("--personal-data", choices=("yes", "no"))
    update.set_defaults(func=_update)

    for name, helptext in (("disable", "stop sending to an endpoint"), ("enable", "send to an endpoint again"),
                           ("delete", "delete an endpoint (pending deliveries are cancelled)"),
                           ("show", "an endpoint with its change log")):
        cmd = cmds.add_parser(name, help=helptext)
        cmd.add_argument("endpoint_id", type=uuid.UUID)
        if name == "disable":
            cmd.add_argument("--reason", default="disabled by an operator")
        cmd.set_defaults(func=_simple, action=name)

    roll = cmds.add_parser("roll-secret", help="a new secret (printed once); the old one signs for the overlap")
    roll.add_argument("endpoint_id", type=uuid.UUID)
    roll.add_argument("--overlap-hours", type=float, default=None,
                      help="default: CONTRACTS_WEBHOOK_SECRET_OVERLAP_HOURS")
    roll.set_defaults(func=_roll)

    deliveries = cmds.add_parser("deliveries", help="an endpoint's delivery log (JSON lines)")
    deliveries.add_argument("endpoint_id", type=uuid.UUID)
    deliveries.add_argument("--notification", type=uuid.UUID, help="one notification, with every attempt")
    deliveries.add_argument("--status", choices=("pending", "delivered", "failed", "cancelled"))
    deliveries.add_argument("--after", type=int, default=0)
    deliveries.add_argument("--limit", type=int, default=100)
    deliveries.set_defaults(func=_deliveries)

    redeliver = cmds.add_parser("redeliver", help="send again one notification or a position range")
    redeliver.add_argument("endpoint_id", type=uuid.UUID)
    redeliver.add_argument("--notification", type=uuid.UUID)
    redeliver.add_argument("--from", dest="from_position", type=int)
    redeliver.add_argument("--to", dest="to_position", type=int)
    json_flag(redeliver)
    redeliver.set_defaults(func=_redeliver)

    announce = sub.add_parser("announce", help="announce a discontinuation (Art. 18) or a terms change (Art. 28)")
    kinds = announce.add_subparsers(dest="announce_command", required=True)
    disc = kinds.add_parser("discontinuation", help="every contract of the service ends on the date (>= 3 months)")
    disc.add_argument("--service", required=True)
    disc.add_argument("--on", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    disc.set_defaults(func=_announce_discontinuation)
    terms = kinds.add_parser("terms-change", help="the terms change on the date; customers may object before")
    terms.add_argument("--version", required=True)
    terms.add_argument("--effective-on", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    terms.add_argument("--summary", required=True)
    terms.set_defaults(func=_announce_terms)


def actor() -> str:
    try:
        return f"cli ({getpass.getuser()})"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _parts(settings: Settings) -> Iterator[tuple[Services, WebhookParts]]:
    services = build_services(settings)
    parts = build_webhooks(services, in_process=False)
    try:
        yield services, parts
    finally:
        parts.stop()
        services.close()


def _print(doc: Any) -> None:
    print(json.dumps(doc, ensure_ascii=False, indent=2))


def _types(args: argparse.Namespace) -> int:
    types = types_view()
    emit(args, types, [f"{t['type']}\tv{t['version']}\t{t['article'] or ''}\t{t['description']}" for t in types])
    return 0


def _list(args: argparse.Namespace) -> int:
    with _parts(args.settings) as (_, parts):
        endpoints = parts.webhooks.store.list_endpoints()
    emit(args, [endpoint_view(e) for e in endpoints],
         [f"{e.endpoint_id}\t{e.status}\t{e.url}\t{','.join(e.event_types)}"
          + (f"\t{e.disabled_reason}" if e.disabled_reason else "") for e in endpoints])
    return 0


def _status(args: argparse.Namespace) -> int:
    with _parts(args.settings) as (services, parts):
        last = services.app.recorder.max_notification_id() or 0
        position = parts.webhooks.store.position()
        counts = parts.webhooks.store.counts()
    emit(args, {"position": position, "last": last, "behind": last - position, "rows": counts},
         f"queue derived up to position {position} of {last} ({last - position} behind); "
         f"rows: {json.dumps(counts, sort_keys=True)}")
    return 0


def _types_arg(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _add(args: argparse.Namespace) -> int:
    with _parts(args.settings) as (_, parts):
        endpoint, secret = parts.webhooks.admin.register(args.url, _types_arg(args.types), datetime.now(UTC), actor(),
                                                         description=args.description,
                                                         personal_data=args.personal_data)
    _print(endpoint_view(endpoint))
    print(secret)
    print("(the endpoint's signing secret: store it now, it is not shown again)", file=sys.stderr)
    return 0


def _update(args: argparse.Namespace) -> int:
    with _parts(args.settings) as (_, parts):
        personal = None if args.personal_data is None else args.personal_data == "yes"
        updated = parts.webhooks.admin.update(args.endpoint_id, datetime.now(UTC), actor(), url=args.url,
                                              event_types=_types_arg(args.types) if args.types else None,
                                              description=args.description, personal_data=personal)
    _print(endpoint_view(updated))
    return 0


def _simple(args: argparse.Namespace) -> int:
    with _parts(args.settings) as (_, parts):
        admin, now = parts.webhooks.admin, datetime.now(UTC)
        if args.action == "disable":
            _print(endpoint_view(admin.disable(args.endpoint_id, now, actor(), args.reason)))
        elif args.action == "enable":
            _print(endpoint_view(admin.enable(args.endpoint_id, now, actor())))
        elif args.action == "delete":
            admin.delete(args.endpoint_id, now, actor())
            print(f"deleted {args.endpoint_id}")
        else:
            endpoint = admin.get(args.endpoint_id)
            _print({**endpoint_view(endpoint), "log": [
                {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "detail": e.detail}
                for e in parts.webhooks.store.endpoint_log(args.endpoint_id)]})
    return 0


def _roll(args: argparse.Namespace) -> int:
    hours = args.overlap_hours if args.overlap_hours is not None else args.settings.webhook_secret_overlap_hours
    with _parts(args.settings) as (_, parts):
        secret = parts.webhooks.admin.roll_secret(args.endpoint_id, timedelta(hours=hours), datetime.now(UTC),
                                                  actor())
    print(secret)
    print(f"(the new secret, shown once; the previous one keeps signing for {hours:g} h)", file=sys.stderr)
    return 0


def _deliveries(args: argparse.Namespace) -> int:
    with _parts(args.settings) as (_, parts):
        if args.notification is not None:
            _print(delivery_view(parts.webhooks.delivery(args.endpoint_id, args.notification), history=True))
            return 0
        parts.webhooks.admin.get(args.endpoint_id)
        for d in parts.webhooks.store.deliveries(args.endpoint_id, args.after, args.limit, args.status):
            print(json.dumps(delivery_view(d), ensure_ascii=False))
    return 0


def _redeliver(args: argparse.Namespace) -> int:
    with _parts(args.settings) as (_, parts):
        count = parts.webhooks.redeliver(args.endpoint_id, datetime.now(UTC), notification_id=args.notification,
                                         from_position=args.from_position, to_position=args.to_position)
    emit(args, {"queued": count}, f"queued {count} notification(s) again")
    return 0


def _announce(settings: Settings, command: Callable[[Services, datetime], Any]) -> int:
    services = build_services(settings)
    try:
        with acting_as(Actor.operator(actor())):  # section 13: the event records who announced it
            result = command(services, datetime.now(UTC))
        print(f"announced: {result.aggregate_id} (position {result.position})")
    finally:
        services.close()
    return 0


def _announce_discontinuation(args: argparse.Namespace) -> int:
    return _announce(args.settings, lambda s, now: s.app.announce_discontinuation(args.service, args.on, now))


def _announce_terms(args: argparse.Namespace) -> int:
    return _announce(args.settings, lambda s, now: s.app.announce_terms_change(args.version, args.effective_on,
                                                                               args.summary, now))


def _run(args: argparse.Namespace) -> int:
    settings = args.settings

    def open_parts() -> tuple[Services, WebhookParts]:
        services = build_services(settings)
        return services, build_webhooks(services, in_process=False)

    def follow(opened: tuple[Services, WebhookParts], stop: threading.Event) -> None:
        parts = opened[1]
        log.info("webhooks: deriving from position %d and delivering (%s)", parts.webhooks.store.position(),
                 settings.database_label())
        parts.worker.run_forever(stop)

    def close(opened: tuple[Services, WebhookParts]) -> None:
        services, parts = opened
        parts.stop()
        services.close()

    return run_until_stopped(args, log, "stopping after the attempts in flight", open_parts, follow, close,
                             reason=lambda exc: type(exc).__name__)
