"""``contracts settlement``: bank transfers for an operator at the command line (rule book 7).

- ``unapplied``: the transfers kept as unapplied (payer unknown), oldest value date first, from
  the transfers read table (``rm_transfers``), not a scan of the log;
- ``show ID``: one transfer and where its money went;
- ``apply ID --customer N [--invoice ID ...]``: assign an unapplied transfer to its customer
  (allocated oldest first, or to the invoices named);
- ``reverse ID --reason TEXT [--on DATE]``: a bounced or mistaken transfer, undone by a new fact;
- ``account N``: the customer's contracts, open invoices and credit balance.

Every subcommand prints one JSON document with ``--json`` (the API's shapes), else short lines.
Commands run with the service clock (the sandbox clock in sandbox mode) and record the operator
(``cli (<user>)``) as their actor (section 13). A refusal prints the rule and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from api.auth import OPERATOR, Principal
from api.cli.webhooks import actor
from application.actors import Actor, acting_as
from application.settlement import open_invoices
from domain.calendar import jst_date
from domain.settlement import Transfer
from infrastructure.bootstrap import Process, bootstrap

CLI_OPERATOR = Principal("cli", OPERATOR)  # an operator at the console sees the payer (rule book 10)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("settlement", help="bank transfers: unapplied list, apply, reverse (rule book 7)")
    cmds = p.add_subparsers(dest="settlement_command", required=True)
    unapplied = cmds.add_parser("unapplied", help="transfers kept as unapplied (payer unknown), oldest first")
    unapplied.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    unapplied.set_defaults(func=_unapplied)
    show = cmds.add_parser("show", help="one transfer and where its money went")
    show.add_argument("transfer_id", type=uuid.UUID)
    show.set_defaults(func=_show)
    apply = cmds.add_parser("apply", help="assign an unapplied transfer to its customer")
    apply.add_argument("transfer_id", type=uuid.UUID)
    apply.add_argument("--customer", required=True, help="the customer number")
    apply.add_argument("--invoice", type=uuid.UUID, action="append", default=[],
                       help="an invoice the payer named (repeat; default: oldest open invoices first)")
    apply.set_defaults(func=_apply)
    reverse = cmds.add_parser("reverse", help="reverse a bounced or mistaken transfer")
    reverse.add_argument("transfer_id", type=uuid.UUID)
    reverse.add_argument("--reason", required=True)
    reverse.add_argument("--on", type=date.fromisoformat, default=None,
                         help="the day it bounced, YYYY-MM-DD (default: today, JST, by the service clock)")
    reverse.set_defaults(func=_reverse)
    account = cmds.add_parser("account", help="a customer's contracts, open invoices and credit balance")
    account.add_argument("customer_number")
    account.set_defaults(func=_account)
    for command in (unapplied, show, apply, reverse, account):
        command.add_argument("--json", action="store_true", help="print one JSON document")


@contextmanager
def _process(args: argparse.Namespace) -> Iterator[Process]:
    process = bootstrap(args.settings, api_store=True)  # the sandbox clock of a sandbox store
    try:
        yield process
    finally:
        process.close()


def _view(transfer: Transfer) -> dict[str, Any]:
    from api.routes.transfers import transfer_view

    return transfer_view(transfer, CLI_OPERATOR)


def _print_transfer(view: dict[str, Any]) -> None:
    print(f"{view['id']}\t{view['status']}\t{view['value_date']}\t{view['amount']} yen\t"
          f"customer {view['customer_number'] or '-'}\tcredit {view['credit']} yen")
    for a in view["allocations"]:
        print(f"  paid {a['amount']} yen to invoice {a['invoice_id']} ({a['rule']})")
    for w in view["written_off"]:
        print(f"  wrote off {w['amount']} yen of invoice {w['invoice_id']} ({w['rule']})")
    if view["reversed_on"]:
        print(f"  reversed on {view['reversed_on']}: {view['reversal_reason']}")


def _unapplied(args: argparse.Namespace) -> int:
    with _process(args) as process:
        models = process.read_models
        if models.in_process:
            models.runner.catch_up()  # the embedded store: project up to the newest event here
        else:
            latest = process.services.app.recorder.max_notification_id() or 0
            if not models.wait_for(latest, timeout=10.0):
                print(f"warning: the read models are behind the event log (at {models.position()} of {latest}): "
                      "is the projection runner running?", file=sys.stderr)
        ids = models.unapplied_transfer_ids(args.limit + 1)
        views = [_view(process.services.app.get_transfer(t)) for t in ids[:args.limit]]
    if args.json:
        print(json.dumps({"object": "list", "data": views, "has_more": len(ids) > args.limit}, ensure_ascii=False))
        return 0
    for view in views:
        _print_transfer(view)
    if len(ids) > args.limit:
        print(f"(more than {args.limit}: use --limit)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    with _process(args) as process:
        view = _view(process.services.app.get_transfer(args.transfer_id))
    return _out(args, view)


def _apply(args: argparse.Namespace) -> int:
    with _process(args) as process, acting_as(Actor.operator(actor())):  # section 13: who applied it
        app = process.services.app
        app.apply_unapplied(args.transfer_id, args.customer, process.clock.now(), args.invoice)
        view = _view(app.get_transfer(args.transfer_id))
    return _out(args, view)


def _reverse(args: argparse.Namespace) -> int:
    with _process(args) as process, acting_as(Actor.operator(actor())):
        app, now = process.services.app, process.clock.now()
        app.reverse_transfer(args.transfer_id, args.reason, args.on or jst_date(now), now)
        view = _view(app.get_transfer(args.transfer_id))
    return _out(args, view)


def _account(args: argparse.Namespace) -> int:
    from domain.errors import NotFound

    with _process(args) as process:
        app = process.services.app
        account = app.account_of(args.customer_number)
        if account is None:
            raise NotFound("rule book 7", "no account for this customer", "customer_number")
        contracts = app.customer_contracts(account)
        items = open_invoices(contracts)
        view: dict[str, Any] = {
            "object": "customer_account", "customer_number": account.customer_number,
            "contracts": [str(c.id) for c in contracts], "credit_balance": account.credit_balance,
            "refunded": account.refunded,
            "open_invoices": [{"invoice_id": str(i.invoice_id), "contract_id": str(i.contract_id),
                               "due_on": i.due_on.isoformat(), "outstanding": i.outstanding} for i in items],
            "outstanding": sum(i.outstanding for i in items)}
    if args.json:
        print(json.dumps(view, ensure_ascii=False))
        return 0
    print(f"customer {view['customer_number']}: {len(view['contracts'])} contract(s), outstanding "
          f"{view['outstanding']} yen, credit balance {view['credit_balance']} yen")
    for i in view["open_invoices"]:
        print(f"  invoice {i['invoice_id']} due {i['due_on']}: {i['outstanding']} yen")
    return 0


def _out(args: argparse.Namespace, view: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(view, ensure_ascii=False))
    else:
        _print_transfer(view)
    return 0
