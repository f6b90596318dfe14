"""Settlement over HTTP (rule book 7, Art. 9.3 and 9.5): transfers, the customer's account and
credit balance, write-offs and the operator's discretion over a suspension."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from api import resources as r
from api.auth import OPERATORS, READERS, WRITERS, Principal, current_principal, roles
from api.context import ApiContext, context
from api.idempotency import Outcome, etag, parse_if_match, run_command
from api.json_body import JSONResponse
from api.schemas import (
    PROBLEM_RESPONSES,
    ApplyTransferIn,
    CreditRefundIn,
    LiftIn,
    ReverseTransferIn,
    StopDateIn,
    TransferIn,
    WriteOffIn,
)
from api.views import jsonable, personal
from application.service import CommandResult
from application.settlement import open_invoices
from domain.errors import NotFound
from domain.settlement import CustomerAccount, Transfer

router = APIRouter(tags=["settlement"], responses=PROBLEM_RESPONSES)

Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(current_principal)]
Customer = Annotated[str, Path(min_length=1, max_length=64)]


def transfer_view(transfer: Transfer, who: Principal) -> dict[str, Any]:
    return {
        "object": "transfer",
        "id": str(transfer.id),
        "status": transfer.status,
        "customer_number": transfer.customer_number,
        "payer_name": personal(transfer.payer_name, who),
        "bank_reference": personal(transfer.bank_reference, who),
        "amount": transfer.amount,
        "value_date": transfer.value_date.isoformat(),
        "received_at": jsonable(transfer.received_at),
        "named_invoices": [str(i) for i in transfer.named_invoices],
        "allocations": [a.to_dict() for a in transfer.allocations],
        "written_off": [a.to_dict() for a in transfer.written_off],
        "credit": transfer.credit,
        "reversed_on": transfer.reversed_on.isoformat() if transfer.reversed_on else None,
        "reversal_reason": transfer.reversal_reason,
        "version": transfer.version,
    }


def _outcome(result: CommandResult, body: dict[str, Any], status: int = 200) -> Outcome:
    return Outcome(body=body, status=status, position=result.position, headers={"ETag": etag(result.version)})


@router.post("/v1/transfers", status_code=201, summary="Record a bank transfer received (rule book 7)",
             response_model=r.Transfer, **roles(*WRITERS))
def receive_transfer(body: TransferIn, request: Request, ctx: Ctx, who: Who) -> Response:
    def act() -> Outcome:
        out = ctx.app.receive_transfer(body.customer_number, body.payer_name, body.bank_reference, body.amount,
                                       body.value_date, ctx.now(), body.invoice_ids, body.contract_id)
        view = transfer_view(ctx.app.get_transfer(out.transfer.id), who)
        outcome = _outcome(out.result, view, 201)
        outcome.headers["Location"] = f"/v1/transfers/{out.transfer.id}"
        return outcome
    return run_command(ctx, request, who, body, act)


@router.get("/v1/transfers", summary="Transfers kept as unapplied (payer unknown), oldest first",
            response_model=r.TransferList, **roles(*OPERATORS))
def list_unapplied(ctx: Ctx, who: Who, status: Annotated[str, Query(pattern="^unapplied$")] = "unapplied",
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    found = ctx.read_models.unapplied_transfer_ids(limit + 1)  # the transfers table, not the log (rule book 7)
    return JSONResponse({"object": "list", "data": [transfer_view(ctx.app.get_transfer(t), who) for t in found[:limit]],
                         "has_more": len(found) > limit})


@router.get("/v1/transfers/{transfer_id}", summary="One transfer and where its money went",
            response_model=r.Transfer, **roles(*READERS))
def get_transfer(transfer_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    transfer = ctx.app.get_transfer(transfer_id)
    return JSONResponse(transfer_view(transfer, who), headers={"ETag": etag(transfer.version)})


@router.post("/v1/transfers/{transfer_id}/apply", summary="Apply an unapplied transfer to its customer (operator)",
             response_model=r.Transfer, **roles(*OPERATORS))
def apply_transfer(transfer_id: uuid.UUID, body: ApplyTransferIn, request: Request, ctx: Ctx, who: Who) -> Response:
    def act() -> Outcome:
        out = ctx.app.apply_unapplied(transfer_id, body.customer_number, ctx.now(), body.invoice_ids)
        return _outcome(out.result, transfer_view(ctx.app.get_transfer(transfer_id), who))
    return run_command(ctx, request, who, body, act)


@router.post("/v1/transfers/{transfer_id}/reverse", summary="Reverse a bounced or mistaken transfer (operator)",
             response_model=r.Transfer, **roles(*OPERATORS))
def reverse_transfer(transfer_id: uuid.UUID, body: ReverseTransferIn, request: Request, ctx: Ctx,
                     who: Who) -> Response:
    def act() -> Outcome:
        result = ctx.app.reverse_transfer(transfer_id, body.reason, body.reversed_on, ctx.now())
        return _outcome(result, transfer_view(ctx.app.get_transfer(transfer_id), who))
    return run_command(ctx, request, who, body, act)


def account_view(ctx: ApiContext, account: CustomerAccount) -> dict[str, Any]:
    contracts = ctx.app.customer_contracts(account)
    items = open_invoices(contracts)
    return {
        "object": "customer_account",
        "customer_number": account.customer_number,
        "contracts": [str(c) for c in account.contract_ids],
        "credit_balance": account.credit_balance,
        "refunded": account.refunded,
        "open_invoices": [{"invoice_id": str(i.invoice_id), "contract_id": str(i.contract_id),
                           "due_on": i.due_on.isoformat(), "outstanding": i.outstanding} for i in items],
        "outstanding": sum(i.outstanding for i in items),
        "version": account.version,
    }


@router.get("/v1/customers/{customer_number}/account", summary="The customer's contracts, open invoices and "
            "credit balance (rule book 7)", response_model=r.CustomerAccountResource, **roles(*READERS))
def get_account(customer_number: Customer, ctx: Ctx, who: Who) -> Response:
    account = ctx.app.account_of(customer_number)  # with contracts from before accounts (rule book 7)
    if account is None:
        raise NotFound("rule book 7", "no account for this customer", "customer_number")
    return JSONResponse(account_view(ctx, account))


@router.post("/v1/customers/{customer_number}/credit/apply", summary="Apply the credit balance to open invoices",
             response_model=r.CustomerAccountResource, **roles(*WRITERS))
def apply_credit(customer_number: Customer, request: Request, ctx: Ctx, who: Who) -> Response:
    def act() -> Outcome:
        result = ctx.app.apply_credit_balance(customer_number, ctx.now())
        account = ctx.app.find_account(customer_number)
        assert account is not None
        return _outcome(result, account_view(ctx, account))
    return run_command(ctx, request, who, None, act)


@router.post("/v1/customers/{customer_number}/credit/refund", summary="Refund credit balance (operator)",
             response_model=r.CustomerAccountResource, **roles(*OPERATORS))
def refund_credit(customer_number: Customer, body: CreditRefundIn, request: Request, ctx: Ctx,
                  who: Who) -> Response:
    def act() -> Outcome:
        result = ctx.app.refund_credit_balance(customer_number, body.amount, body.reason, ctx.now())
        account = ctx.app.find_account(customer_number)
        assert account is not None
        return _outcome(result, account_view(ctx, account))
    return run_command(ctx, request, who, body, act)


def _contract_outcome(ctx: ApiContext, result: CommandResult) -> Outcome:
    contract = ctx.app.get_contract(result.aggregate_id, version=result.version)
    return _outcome(result, {"contract_id": str(result.aggregate_id), "version": result.version,
                             "position": result.position, "events": result.events, "state": contract.state.value,
                             "suspension_stop_on": jsonable(contract.suspension_stop_on),
                             "outstanding": contract.ledger.outstanding()})


@router.post("/v1/contracts/{contract_id}/write-offs", summary="Write off an uncollectible amount (operator, "
             "rule book 7)", response_model=r.SettlementResult, **roles(*OPERATORS))
def write_off(contract_id: uuid.UUID, body: WriteOffIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)
    return run_command(ctx, request, who, body, lambda: _contract_outcome(
        ctx, ctx.app.write_off_debt(contract_id, body.invoice_id, body.amount, body.reason, ctx.now(), expected)))


@router.post("/v1/contracts/{contract_id}/suspension/stop-date", summary="Move a suspension's stop date "
             "(operator, Art. 9.5 proviso)", response_model=r.SettlementResult, **roles(*OPERATORS))
def move_stop_date(contract_id: uuid.UUID, body: StopDateIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)
    return run_command(ctx, request, who, body, lambda: _contract_outcome(
        ctx, ctx.app.move_suspension_stop(contract_id, body.stop_on, body.reason, ctx.now(), expected)))


@router.post("/v1/contracts/{contract_id}/suspension/lift", summary="Lift a suspension and continue the contract "
             "(operator, Art. 9.5 proviso)", response_model=r.SettlementResult, **roles(*OPERATORS))
def lift(contract_id: uuid.UUID, body: LiftIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)
    return run_command(ctx, request, who, body, lambda: _contract_outcome(
        ctx, ctx.app.lift_suspension(contract_id, body.reason, ctx.now(), expected)))
