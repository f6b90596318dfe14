"""``contracts audit``: verify the hash chain, export history as JSON Lines, replay an export
offline, and produce a disclosure document.

``verify``, ``export`` and ``disclose`` open the configured store (``CONTRACTS_DATABASE_URL``
or ``CONTRACTS_SQLITE_PATH``, or ``--db FILE``); ``replay`` reads only its file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from application import audit
from domain.calendar import jst_date
from infrastructure.bootstrap import Services, build_services


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("audit", help="audit: verify the hash chain, export, replay offline, disclose")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)

    v = audit_sub.add_parser("verify", help="recompute the hash chain of one contract or the whole store "
                                            "(exit 1 when a link is broken)")
    _store_args(v)
    v.add_argument("--contract", type=uuid.UUID, help="contract id (default: every aggregate in the store)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=_verify)

    e = audit_sub.add_parser("export", help="write a contract's (or the whole store's) history as JSON Lines")
    _store_args(e)
    e.add_argument("--contract", type=uuid.UUID, help="contract id (default: every event in the store)")
    e.add_argument("--out", type=Path, help="output file (default: standard output)")
    e.add_argument("--redact", action="store_true",
                   help="leave personal fields out of the payload (figures and chain still check)")
    e.set_defaults(func=_export)

    r = audit_sub.add_parser("replay", help="recompute state, invoices and SLA credits from an export alone")
    r.add_argument("file", type=Path, help="JSON Lines written by 'contracts audit export' ('-' for stdin)")
    r.add_argument("--as-of", type=date.fromisoformat, default=None,
                   help="date for late interest (default: today in JST)")
    r.add_argument("--late-interest-rate", type=Decimal, default=None,
                   help="annual late interest rate (default: CONTRACTS_LATE_INTEREST_RATE or 0.145)")
    r.add_argument("--contract", type=uuid.UUID, help="only this contract")
    r.set_defaults(func=_replay)

    d = audit_sub.add_parser("disclose", help="everything held about one contractor, as one JSON document")
    _store_args(d)
    who = d.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", help="customer number")
    who.add_argument("--contract", type=uuid.UUID, help="contract id")
    d.add_argument("--out", type=Path, help="output file (default: standard output)")
    d.set_defaults(func=_disclose)


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, default=None, help="SQLite file (default: from the CONTRACTS_* settings)")


@contextlib.contextmanager
def _services(args: argparse.Namespace) -> Iterator[Services]:
    settings = args.settings
    if args.db is not None:
        settings = settings.model_copy(update={"sqlite_path": args.db, "database_url": None})
    services = build_services(settings)
    try:
        yield services
    finally:
        services.close()


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8") as out:
        yield out


def _verify(args: argparse.Namespace) -> int:
    with _services(args) as services:
        report = audit.verify_chain(services.app, args.contract)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        scope = f"contract {args.contract}" if args.contract else "store"
        print(f"{scope}: {report.checked} events in {report.aggregates} chains checked; "
              f"{'ok' if report.ok else 'BROKEN'}; head {report.head}")
        for b in report.broken:
            print(f"broken: {b.aggregate_id} version {b.version}: {b.reason}")
    return 0 if report.ok else 1


def _export(args: argparse.Namespace) -> int:
    with _services(args) as services, _output(args.out) as out:
        count = audit.write_jsonl(audit.export_records(services.app, args.contract, redact=args.redact), out)
    print(f"exported {count} events", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    as_of = args.as_of or jst_date(datetime.now(UTC))
    rate = args.late_interest_rate
    if rate is None:
        rate = args.settings.late_interest_rate
    if str(args.file) == "-":
        result = audit.replay(sys.stdin, as_of, rate, args.contract)
    else:
        with args.file.open(encoding="utf-8") as lines:
            result = audit.replay(lines, as_of, rate, args.contract)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if result["chains_ok"] else 1


def _disclose(args: argparse.Namespace) -> int:
    with _services(args) as services, _output(args.out) as out:
        document: dict[str, Any] = audit.disclosure(services.app, contract_id=args.contract,
                                                    customer_number=args.customer)
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return 0
