"""``contracts audit``: verify the hash chain (and compare it with a signed checkpoint), sign a
checkpoint, export history as JSON Lines, replay an export offline, and produce a disclosure
document.

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

from api.cli import emit, json_flag
from application import audit, checkpoints
from application.actors import Actor, acting_as
from domain.calendar import jst_date
from infrastructure import checkpointing
from infrastructure.bootstrap import Services, build_services


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("audit", help="audit: verify the hash chain, export, replay offline, disclose")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)

    v = audit_sub.add_parser("verify", help="recompute the hash chain of one contract or the whole store "
                                            "(exit 1 when a link is broken)")
    _store_args(v)
    v.add_argument("--contract", type=uuid.UUID, help="contract id (default: every aggregate in the store)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--checkpoint", type=Path, default=None,
                   help="also compare the store with this signed checkpoint file (default: the store's latest "
                        "checkpoint, when one exists and a trusted public key is configured)")
    v.add_argument("--public-key", default=None,
                   help="the trusted checkpoint public key (base64; default: CONTRACTS_CHECKPOINT_PUBLIC_KEY, "
                        "else the public half of CONTRACTS_CHECKPOINT_KEY)")
    v.set_defaults(func=_verify)

    c = audit_sub.add_parser("checkpoint", help="sign a checkpoint of the whole chain now (CONTRACTS_CHECKPOINT_KEY), "
                                                "keep it in the store and write it for an auditor")
    _store_args(c)
    c.add_argument("--out", type=Path, help="also write the checkpoint to this file")
    c.add_argument("--latest", action="store_true", help="do not sign a new one: export the store's latest")
    json_flag(c)
    c.set_defaults(func=_checkpoint)

    k = audit_sub.add_parser("checkpoint-key", help="print a new checkpoint signing key and its public key")
    k.set_defaults(func=_checkpoint_key)

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

    q = audit_sub.add_parser("privacy-request", help="act on a request to stop using or erase the contractor's "
                                                     "personal data (privacy policy 7); prints the recorded answer")
    _store_args(q)
    q.add_argument("--contract", type=uuid.UUID, required=True, help="contract id")
    q.add_argument("--request", choices=("erase", "stop_use"), required=True,
                   help="erase (消去) or stop_use (利用停止): contacts go at once, the invoice recipient stays "
                        "until the records period ends")
    q.add_argument("--operator", required=True, help="who acts on the request (recorded as the actor)")
    q.set_defaults(func=_privacy_request)


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
        against = _checkpoint_report(args, services)
    if args.json:
        result = report.to_dict()
        if against is not None:
            result["checkpoint"] = against if isinstance(against, dict) else against.to_dict()
        print(json.dumps(result, indent=2))
    else:
        scope = f"contract {args.contract}" if args.contract else "store"
        print(f"{scope}: {report.checked} events in {report.aggregates} chains checked; "
              f"{'ok' if report.ok else 'BROKEN'}; head {report.head}")
        for b in report.broken:
            print(f"broken: {b.aggregate_id} version {b.version}: {b.reason}")
        if isinstance(against, dict):
            print(f"checkpoint: {against['problem']}")
        elif against is not None:
            print(f"checkpoint {against.sequence} (position {against.position}, {against.events} events): "
                  f"{'ok' if against.ok else 'DIFFERS'}; {against.after_checkpoint} events stored after it "
                  "(not covered)")
            for d in against.differences:
                print(f"differs: {d.kind}: {d.reason}")
    checkpoint_ok = against is None or (not isinstance(against, dict) and against.ok)
    return 0 if report.ok and checkpoint_ok else 1


def _checkpoint_report(args: argparse.Namespace, services: Services) -> checkpoints.CheckpointReport | dict[str, str] \
        | None:
    """The comparison with ``--checkpoint FILE`` or the store's latest; ``None`` when there is
    nothing to compare with; a dict naming the problem when the checkpoint cannot be used."""
    try:
        document = (checkpoints.parse(args.checkpoint.read_text(encoding="utf-8")) if args.checkpoint is not None
                    else checkpointing.latest_checkpoint(services))
        if document is None:
            return None
        verifier = checkpointing.verifier_from(services.settings, args.public_key)
        return checkpoints.verify_against(checkpointing.chain_store_of(services.app), document, verifier)
    except (checkpoints.CheckpointError, checkpointing.CheckpointsUnavailable, OSError, ValueError) as exc:
        if args.checkpoint is None and isinstance(exc, checkpointing.CheckpointsUnavailable):
            return None  # the store's latest, but no key to trust it with: the chain report stands alone
        return {"ok": "false", "problem": str(exc)}


def _checkpoint(args: argparse.Namespace) -> int:
    with _services(args) as services:
        try:
            if args.latest:
                document = checkpointing.latest_checkpoint(services)
                if document is None:
                    print("no checkpoint is stored yet", file=sys.stderr)
                    return 1
                if args.out is not None:
                    args.out.write_text(checkpoints.dumps(document), encoding="utf-8")
            else:
                document = checkpointing.make_checkpoint(services, out=args.out)
        except (checkpoints.CheckpointError, checkpointing.CheckpointsUnavailable) as exc:
            print(f"contracts: {exc}", file=sys.stderr)
            return 1
    written = f"; written to {args.out}" if args.out else ""
    emit(args, document, f"checkpoint {document['sequence']}: {document['events']} events up to position "
         f"{document['position']}, signed by {document['public_key']}{written}")
    return 0


def _checkpoint_key(args: argparse.Namespace) -> int:
    from infrastructure.checkpoint_keys import Ed25519Signer, new_private_key

    private = new_private_key()
    print(f"CONTRACTS_CHECKPOINT_KEY={private}")
    print(f"CONTRACTS_CHECKPOINT_PUBLIC_KEY={Ed25519Signer(private).public_key}")
    print("keep the first outside the database (a secret store); give the second to auditors", file=sys.stderr)
    return 0


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


def _privacy_request(args: argparse.Namespace) -> int:
    with _services(args) as services:
        app = services.app
        with acting_as(Actor.operator(args.operator)):  # section 13: the operator is the actor
            _, answer = app.answer_privacy_request(args.contract, args.request, datetime.now(UTC))
        document = {k: v.isoformat() if isinstance(v, date) else v for k, v in answer.items()}
        document["retention"] = audit.retention_document(app.get_contract(args.contract), app.policy)
    print(json.dumps({"contract_id": str(args.contract), **document}, indent=2, ensure_ascii=False))
    return 0
