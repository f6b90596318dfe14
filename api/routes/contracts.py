"""Contracts: application and review, changes, notices, payments, termination; contract reads."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from api import resources as r
from api.auth import OPERATORS, READERS, WRITERS, Principal, current_principal, roles
from api.context import ApiContext, context
from api.idempotency import Outcome, etag, parse_if_match, run_command
from api.json_body import JSONResponse, dumps
from api.lists import Limit, after, envelope
from api.routes.webhooks import notices_of
from api.schemas import (
    PROBLEM_RESPONSES,
    AdvanceIn,
    ApplicationIn,
    ApplyIn,
    ChangeIn,
    ContractorIn,
    Instant,
    IsoDate,
    PaymentIn,
    PrivacyRequestIn,
    RejectIn,
    TerminateIn,
    TerminationNoticeIn,
)
from api.views import claim_document, claim_resource, contract_view, event_view, invoice_resource, jsonable
from application.audit import disclosure as disclosure_document
from application.audit import retention_document, verify_chain
from application.contract_history import ContractHistory, contract_history
from application.service import CommandResult
from domain.calendar import Month, jst_date
from domain.contract import BillingCycle, Contract, State
from domain.errors import ConcurrencyConflict, InvalidInput, NotFound, RuleViolation

log = logging.getLogger("api")
router = APIRouter(prefix="/v1/contracts", tags=["contracts"], responses=PROBLEM_RESPONSES)

Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(current_principal)]
AsOf = Annotated[Instant | None, Query(description="ISO 8601 instant: as recorded by then")]
On = Annotated[IsoDate | None, Query(description="YYYY-MM-DD: as it stood at the end of that business date (JST)")]


def command_outcome(result: CommandResult, status: int = 200, **extra: Any) -> Outcome:
    body = {"contract_id": str(result.aggregate_id), "version": result.version, "position": result.position,
            "events": result.events, **extra}
    return Outcome(body=body, status=status, position=result.position, headers={"ETag": etag(result.version)})


def last_event(ctx: ApiContext, aggregate_id: uuid.UUID, version: int) -> Any:
    return next(iter(ctx.app.events.get(aggregate_id, gt=version - 1, lte=version)))


def contract_as_of(ctx: ApiContext, contract_id: uuid.UUID, as_of: Any) -> Contract:
    """The contract as it stood at instant ``as_of``, by the events' *recorded* times (what the
    service knew then), from the read side's timestamp index."""
    if as_of is None:
        return ctx.app.get_contract(contract_id)
    contract = ctx.read_models.contract_as_of(contract_id, as_of)
    if contract is None:
        ctx.app.get_contract(contract_id)  # 404 if there is no such contract at all
        raise NotFound("rule book 11", "the contract did not exist yet at as_of", "as_of")
    return contract


def one_of(as_of: Any, on: date | None) -> None:
    if as_of is not None and on is not None:
        raise InvalidInput("rule book 11", "give as_of (recorded time) or on (a business date), not both", "on")


def history_on(ctx: ApiContext, contract_id: uuid.UUID, on: date) -> ContractHistory:
    """The contract as it stood at the end of business date ``on`` (JST): its events folded in the
    order of their business dates (``application.contract_history``, as the UI's as-of date), so a
    sandbox's business dates answer what happened on them whatever the wall clock said."""
    events = ctx.app.contract_events(contract_id)  # 404 if there is no such contract
    history = contract_history(contract_id, events, on, ctx.app.policy, ctx.today())
    if history.contract is None:
        raise NotFound("rule book 11", "the contract did not exist yet on that date", "on")
    return history


def history_as_of(ctx: ApiContext, contract_id: uuid.UUID, as_of: datetime) -> ContractHistory:
    """The contract's events as recorded by ``as_of``, folded (late interest as of its JST date)."""
    contract = contract_as_of(ctx, contract_id, as_of)
    events = list(ctx.app.events.get(contract_id, lte=contract.version))
    return contract_history(contract_id, events, None, ctx.app.policy, jst_date(as_of))


# --------------------------------------------------------------------------- commands


@router.post("", status_code=201, summary="Apply for a contract (or start a trial)", response_model=r.ApplyResult,
             **roles(*WRITERS))
def apply(body: ApplyIn, request: Request, ctx: Ctx, who: Who) -> Response:
    def act() -> Outcome:
        cycle = BillingCycle(body.billing_cycle) if body.billing_cycle else None
        result = ctx.app.open_contract(body.customer_number, body.service, body.grade, body.users,
                                       body.contractor.as_dict(), ctx.now(), trial=body.trial, cycle=cycle,
                                       reference=body.reference)
        outcome = command_outcome(result, 201, state="trial" if body.trial else "applied")
        outcome.headers["Location"] = f"/v1/contracts/{result.aggregate_id}"
        return outcome
    return run_command(ctx, request, who, body, act)


@router.post("/{contract_id}/application", summary="Paid application of a contract in trial",
             response_model=r.CommandResult, **roles(*WRITERS))
def apply_from_trial(contract_id: uuid.UUID, body: ApplicationIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        contractor = body.contractor.as_dict() if body.contractor is not None else None
        return command_outcome(ctx.app.apply_from_trial(contract_id, body.grade, body.users,
                                                        BillingCycle(body.billing_cycle), contractor, ctx.now(),
                                                        expected))
    return run_command(ctx, request, who, body, act)


@router.post("/{contract_id}/approve", summary="Approve the application (concludes the contract, Art. 2.3)",
             response_model=r.ApproveResult, **roles(*WRITERS))
def approve(contract_id: uuid.UUID, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        result = ctx.app.approve(contract_id, ctx.now(), expected)
        contract = ctx.app.get_contract(contract_id, version=result.version)
        return command_outcome(result, concluded_on=jsonable(contract.concluded_on),
                               first_month=jsonable(contract.first_month))
    return run_command(ctx, request, who, None, act)


@router.post("/{contract_id}/reject", summary="Reject the application (Art. 2.4)", response_model=r.CommandResult,
             **roles(*WRITERS))
def reject(contract_id: uuid.UUID, body: RejectIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)
    return run_command(ctx, request, who, body, lambda: command_outcome(
        ctx.app.reject(contract_id, body.article, ctx.now(), expected)))


@router.post("/{contract_id}/changes", summary="Request a grade and/or user-count change (Art. 10)",
             response_model=r.ChangeResult, **roles(*WRITERS))
def request_change(contract_id: uuid.UUID, body: ChangeIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        result = ctx.app.request_change(contract_id, body.grade, body.users, body.requested_month, ctx.now(),
                                        expected)
        e = last_event(ctx, contract_id, result.version)
        return command_outcome(result, change_id=str(e.change_id), requested_month=jsonable(e.requested_month),
                               effective_month=str(e.effective_month), received_on=jsonable(e.received_on),
                               grade=e.plan.grade, users=e.users, upgrade_charge=e.upgrade_charge,
                               remaining_months=e.remaining_months)
    return run_command(ctx, request, who, body, act)


@router.post("/{contract_id}/termination-notice", summary="Notice of termination (Art. 10)",
             response_model=r.TerminationNoticeResult, **roles(*WRITERS))
def notice_termination(contract_id: uuid.UUID, body: TerminationNoticeIn, request: Request, ctx: Ctx,
                       who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        result = ctx.app.notice_termination(contract_id, body.requested_month, ctx.now(), expected)
        e = last_event(ctx, contract_id, result.version)
        return command_outcome(result, requested_month=jsonable(e.requested_month),
                               effective_month=str(e.effective_month), received_on=jsonable(e.received_on),
                               last_month_of_service=str(e.effective_month))
    return run_command(ctx, request, who, body, act)


@router.post("/{contract_id}/terminate", summary="Terminate for cause (Art. 2.4, 23, 24), operator only",
             response_model=r.CommandResult, **roles(*OPERATORS))
def terminate(contract_id: uuid.UUID, body: TerminateIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        result = ctx.app.terminate_for_cause(contract_id, body.article, ctx.now(), expected)
        log.info("contract %s terminated for cause (%s) by %s", contract_id, body.article, who.name)
        return command_outcome(result)
    return run_command(ctx, request, who, body, act)


@router.post("/{contract_id}/payments", summary="Record a payment of one invoice (Art. 9)",
             response_model=r.PaymentResult, **roles(*WRITERS))
def record_payment(contract_id: uuid.UUID, body: PaymentIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        result, transfer_id = pay_one_invoice(ctx, contract_id, body, expected)
        invoice = ctx.app.get_contract(contract_id, version=result.version).ledger.invoices[body.invoice_id]
        return command_outcome(result, invoice_id=str(body.invoice_id), outstanding=invoice.outstanding,
                               transfer_id=str(transfer_id))
    return run_command(ctx, request, who, body, act)


def pay_one_invoice(ctx: ApiContext, contract_id: uuid.UUID, body: PaymentIn,
                    expected: int | None) -> tuple[CommandResult, uuid.UUID]:
    """The per-invoice payment is a transfer that names its invoice (rule book 7), so it is listed,
    fetched and reversed like any other; what this endpoint always refused it still refuses
    (an unknown invoice, a date before the invoice, more than is outstanding: Art. 9.3, 9.5)."""
    contract = ctx.app.get_contract(contract_id)
    if expected is not None and expected != contract.version:
        raise ConcurrencyConflict("Art. 9.3", f"contract is at version {contract.version}, not {expected}",
                                  "If-Match")
    invoice = contract.ledger.invoices.get(body.invoice_id)
    if invoice is None:
        raise InvalidInput("Art. 9.3", "no such invoice on this contract", "invoice_id")
    if body.paid_on < invoice.issued_on or body.paid_on > ctx.today():
        raise InvalidInput("Art. 9.3", "paid_on must lie between the invoice's issue date and today", "paid_on")
    if body.amount > invoice.outstanding:
        raise RuleViolation("Art. 9.5", "the amount exceeds the invoice's outstanding amount (use /v1/transfers "
                            "for a transfer whose excess becomes credit)", "amount")
    if body.reference is not None and body.reference in contract.payment_references:
        raise RuleViolation("Art. 9.3", "a payment with this reference is already recorded", "reference")
    reference = body.reference or f"payment:{uuid.uuid4()}"
    out = ctx.app.receive_transfer(contract.customer_number, "", reference, body.amount, body.paid_on, ctx.now(),
                                   [body.invoice_id], contract_id, payment_reference=body.reference)
    was, now = out.contracts.get(contract_id, (contract.version, contract.version))
    result = CommandResult(contract_id, now, out.result.position, now - was)  # this command's events only
    return result, out.transfer.id


@router.post("/{contract_id}/contractor", summary="Change contractor information (Art. 12)",
             response_model=r.CommandResult, **roles(*WRITERS))
def change_contractor(contract_id: uuid.UUID, body: ContractorIn, request: Request, ctx: Ctx,
                      who: Who) -> Response:
    expected = parse_if_match(request)
    return run_command(ctx, request, who, body, lambda: command_outcome(
        ctx.app.change_contractor(contract_id, body.contractor.as_dict(), ctx.now(), expected)))


@router.post("/{contract_id}/privacy-requests", summary="Act on a request to stop using or erase the "
             "contractor's personal data (privacy policy 7), operator only",
             description="Contacts not needed for the legal records (person in charge, e-mail, phone, store "
                         "administrator) are erased at once (their key is destroyed); the invoice recipient's name "
                         "and address are kept until the records period ends (Corporate Tax Act: 7 years after the "
                         "fiscal year of the last invoice; Consumption Tax Act Art. 57-4(1)(6)). The request and "
                         "this answer are recorded (`PrivacyRequestAnswered`). A contract that never had an "
                         "invoice and has ended is erased whole.",
             response_model=r.CommandResult, **roles(*OPERATORS))
def privacy_request(contract_id: uuid.UUID, body: PrivacyRequestIn, request: Request, ctx: Ctx,
                    who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        result, answer = ctx.app.answer_privacy_request(contract_id, body.request, ctx.now(), expected)
        log.info("privacy request %s on contract %s answered by %s: %d fields erased, %d kept", body.request,
                 contract_id, who.name, len(answer["erased_fields"]), len(answer["kept_fields"]))
        contract = ctx.app.get_contract(contract_id, version=result.version)
        return command_outcome(result, **{k: jsonable(v) for k, v in answer.items()},
                               retention=retention_document(contract, ctx.app.policy))
    return run_command(ctx, request, who, body, act)


@router.post("/{contract_id}/advance", summary="Run the contract's month starts up to a month (operator)",
             description="Period starts, renewals, changes taking effect and noticed ends, up to `month` "
                         "(default: the service clock's JST month; never a month that has not begun). "
                         "The scheduler does this on the 1st of every month; this operation lets an operator "
                         "(or a sandbox client) run it on demand. Idempotent: months already run store nothing.",
             response_model=r.AdvanceResult, **roles(*OPERATORS))
def advance(contract_id: uuid.UUID, request: Request, ctx: Ctx, who: Who,
            body: AdvanceIn | None = None) -> Response:
    def act() -> Outcome:
        current = Month.of(ctx.today())
        month = body.month if body is not None and body.month is not None else current
        if month > current:
            raise RuleViolation("Art. 8", f"{month} has not begun (the service clock is in {current})", "month")
        result = ctx.app.advance(contract_id, month, ctx.now())
        contract = ctx.app.get_contract(contract_id, version=result.version)
        return command_outcome(result, month=str(month), state=contract.state.value)
    return run_command(ctx, request, who, body, act)


# --------------------------------------------------------------------------- reads


@router.get("", summary="Find contracts by customer number, service and state (one page in id order)",
            description="Every filter is optional and they combine (`state` may be repeated: any of them). "
                        "Each item is a summary from the read side; `GET /v1/contracts/{id}` reads the whole "
                        "contract. Pass `next_cursor` as `starting_after` for the next page.",
            response_model=r.ContractList, **roles(*READERS))
def search_contracts(ctx: Ctx, who: Who,
                     customer_number: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                     customer_number_prefix: Annotated[str | None, Query(
                         min_length=1, max_length=64, description="customer numbers starting with this "
                         "(case-sensitive)")] = None,
                     service: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                     state: Annotated[list[State] | None, Query(description="repeat for several")] = None,
                     limit: Limit = 50,
                     starting_after: Annotated[uuid.UUID | None, Query(description="a contract id")] = None
                     ) -> Response:
    states = tuple(sorted({s.value for s in state or ()}))
    found = ctx.read_models.search_contracts(customer_number=customer_number, service=service, states=states,
                                             limit=limit + 1, after=starting_after,
                                             customer_prefix=customer_number_prefix)
    items = [{"id": str(c.contract_id), "object": "contract_summary", "contract_id": str(c.contract_id),
              "url": f"/v1/contracts/{c.contract_id}", "customer_number": c.customer_number, "service": c.service,
              "state": c.state, "version": c.version} for c in found]
    return JSONResponse(envelope(items, limit, lambda c: c["id"], "/v1/contracts"))


@router.get("/{contract_id}", summary="Contract state (ETag = version; as_of for a past instant, on for a past "
            "business date)", response_model=r.ContractResource, **roles(*READERS))
def get_contract(contract_id: uuid.UUID, ctx: Ctx, who: Who, as_of: AsOf = None, on: On = None) -> Response:
    # The contract's view, then as_of, on and its notices (no docstring: it would become the OpenAPI
    # description). The current state's view is rendered once per version and role (ApiContext.rendered),
    # checked against the version the store holds on every request. A hot route (api.app.HOT_ROUTES).
    one_of(as_of, on)
    # Without an aggregate cache (aggregate_cache_size 0) every read folds the stored events again, so a
    # damaged event is refused on the next read (issue 14): no rendered view is kept either.
    if as_of is None and on is None and ctx.app.repository.cache:
        hooks = ctx.webhooks
        kept = ctx.rendered.latest(contract_id, who) if hooks is not None else None
        notices: Any = None
        if kept is not None:  # its service and opening known: the stored version and the notices in one read
            version, notices = hooks.notices_at_version(contract_id, kept.service, kept.created_on)
        else:
            version = ctx.app.stored_version(contract_id)
        current = ctx.rendered.get(contract_id, version, who) if version is not None else None
        if current is None:  # not rendered at this version (or no such contract: 404)
            current = ctx.rendered.put(ctx.app.get_contract(contract_id), who)
        view, version = current.body, current.version
        if kept is None:
            notices = notices_of(ctx, current)  # Art. 9.5, 18, 28: when each notice reached each endpoint
    else:
        folded = history_on(ctx, contract_id, on).contract if on is not None else None
        contract = folded or contract_as_of(ctx, contract_id, as_of)
        view, version = dumps(contract_view(contract, who, ctx.app.policy)), contract.version
        notices = notices_of(ctx, contract)
    body = b"".join((view[:-1], b',"as_of":', dumps(jsonable(as_of)), b',"on":', dumps(jsonable(on)),
                     b',"notices":', dumps(notices), b"}"))
    return Response(body, media_type="application/json", headers={"ETag": etag(version)})


@router.get("/{contract_id}/events", summary="The contract's events, oldest first", response_model=r.ContractEvents,
            **roles(*READERS))
def contract_events(contract_id: uuid.UUID, ctx: Ctx, who: Who, limit: Limit = 50,
                    starting_after: Annotated[int | None, Query(ge=0, le=2**62, description="a version")] = None
                    ) -> Response:
    """Oldest first, one page of ``limit`` events after version ``starting_after``."""
    ctx.app.get_contract(contract_id)  # 404 for an unknown contract
    events = list(ctx.app.events.get(contract_id, gt=starting_after or 0, limit=limit + 1))
    views = [event_view(e, who) for e in events]
    body = envelope(views, limit, lambda v: str(v["version"]), f"/v1/contracts/{contract_id}/events")
    return JSONResponse({"contract_id": str(contract_id), **body, "events": body["data"]})


@router.get("/{contract_id}/invoices", summary="Invoices with lines, payments, outstanding and late interest",
            response_model=r.ContractInvoices, **roles(*READERS))
def contract_invoices(contract_id: uuid.UUID, ctx: Ctx, who: Who, as_of: AsOf = None, on: On = None,
                      limit: Limit = 50,
                      starting_after: Annotated[uuid.UUID | None, Query(description="an invoice id")] = None
                      ) -> Response:
    one_of(as_of, on)
    if on is not None:
        folded = history_on(ctx, contract_id, on).contract
        assert folded is not None
        rate = ctx.app.policy.late_interest_rate
        found = [i.to_dict() | {"late_interest": i.late_interest(on, rate), "interest_as_of": on.isoformat()}
                 for i in sorted(folded.ledger.invoices.values(), key=lambda i: (str(i.month), i.kind, i.period))]
    else:
        ctx.app.get_contract(contract_id)
        found = ctx.read_models.invoices(contract_id, as_of)
    invoices = [invoice_resource(i) for i in jsonable(found)]
    body = envelope(after(invoices, "id", starting_after)[:limit + 1], limit, lambda i: i["id"],
                    f"/v1/contracts/{contract_id}/invoices")
    return JSONResponse({"contract_id": str(contract_id), "as_of": jsonable(as_of), "on": jsonable(on), **body,
                         "invoices": body["data"]})


@router.get("/{contract_id}/sla-claims", summary="SLA claims with eligibility, credit range and decision",
            response_model=r.ContractClaims, **roles(*READERS))
def contract_claims(contract_id: uuid.UUID, ctx: Ctx, who: Who, as_of: AsOf = None, on: On = None,
                    limit: Limit = 50,
                    starting_after: Annotated[uuid.UUID | None, Query(description="a claim id")] = None) -> Response:
    one_of(as_of, on)
    history = (history_on(ctx, contract_id, on) if on is not None
               else history_as_of(ctx, contract_id, as_of) if as_of is not None else None)
    if history is not None:
        found = sorted((claim_document(contract_id, f) for f in history.claims),
                       key=lambda d: (d["received_on"], d["claim_id"]))
    else:
        ctx.app.get_contract(contract_id)
        found = jsonable(ctx.read_models.claims(contract_id))
    claims = [claim_resource(c) for c in found]
    body = envelope(after(claims, "id", starting_after)[:limit + 1], limit, lambda c: c["id"],
                    f"/v1/contracts/{contract_id}/sla-claims")
    return JSONResponse({"contract_id": str(contract_id), "as_of": jsonable(as_of), "on": jsonable(on), **body,
                         "claims": body["data"]})


@router.get("/{contract_id}/verify", summary="Tamper check: recompute this contract's hash chain "
            "(ok, events checked, the first broken link)", response_model=r.VerifyReport, **roles(*READERS))
def verify(contract_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    report = verify_chain(ctx.app, contract_id)  # no read first: a damaged contract is named, not refused
    if report.checked == 0:
        ctx.app.get_contract(contract_id)  # no such contract: 404
    return JSONResponse({"contract_id": str(contract_id), **report.to_dict()})


@router.get("/{contract_id}/disclosure", summary="Disclosure export: everything held about the contractor "
            "of this contract, as one document (operator)", response_model=r.Disclosure, **roles(*OPERATORS))
def disclosure(contract_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    document = disclosure_document(ctx.app, contract_id=contract_id, now=ctx.now())
    log.info("disclosure export of contract %s by %s", contract_id, who.name)
    return JSONResponse(jsonable(document), headers={
        "Content-Disposition": f'attachment; filename="disclosure-{contract_id}.json"',
        "Cache-Control": "no-store"})
