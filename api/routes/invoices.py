"""Issued invoices and credit notes (rule book 6.1, Consumption Tax Act Art. 57-4): one document as
data and as a printable PDF, the invoices of a month, and the auditors' search (Electronic
Bookkeeping Act: issue-date range, amount range, counterparty, combined, cursor pagination)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from api import resources as r
from api.auth import OPERATORS, READERS, WRITERS, Principal, current_principal, roles
from api.context import ApiContext, context
from api.errors import ApiProblem
from api.idempotency import Outcome, etag, parse_if_match, run_command
from api.json_body import JSONResponse
from api.lists import Limit, envelope
from api.schemas import MONTH_PATTERN, PROBLEM_RESPONSES, CommandOut, CorrectionIn, CreditNoteIn, IsoDate, ReasonIn
from api.views import invoice_resource, jsonable, personal
from application.service import CommandResult
from domain.billing import InvoiceLine
from domain.calendar import Month
from domain.errors import InvalidInput
from domain.invoicing import tax_rate
from domain.personal_data import REDACTED_VALUE  # the printed document's word (a PDF has no JSON)
from infrastructure.invoice_pdf import FontMissing, render_invoice_pdf

router = APIRouter(prefix="/v1", tags=["invoices"], responses=PROBLEM_RESPONSES)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(current_principal)]
YEN = Annotated[int | None, Query(ge=-(10**12), le=10**12)]


def _cursor(issued_on: str, number: str) -> str:
    return base64.urlsafe_b64encode(f"{issued_on}|{number}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> tuple[date, str] | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        day, number = text.split("|", 1)
        return date.fromisoformat(day), number
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("rule book 13", "not a cursor returned by this endpoint", "cursor") from None


@router.get("/invoices", summary="Invoices of a month, or the auditors' search over issued documents",
            description="With `month` (YYYY-MM): the invoices of that month, one page in invoice id order "
                        "(`starting_after`: the last invoice id). Otherwise a search over issued invoices and "
                        "credit notes by issue date (`issued_from`, `issued_to`, inclusive), amount including tax "
                        "(`amount_min`, `amount_max`) and `counterparty` (the recipient's name, matched exactly "
                        "after Unicode NFKC, case and space folding), alone or combined; ordered by issue date "
                        "and number; pass `next_cursor` back as `cursor`.",
            response_model=r.InvoicePage, **roles(*READERS))
def invoices(ctx: Ctx, who: Who,
             month: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM")] = None,
             starting_after: Annotated[uuid.UUID | None, Query(description="an invoice id (with month)")] = None,
             issued_from: Annotated[IsoDate | None, Query()] = None,
             issued_to: Annotated[IsoDate | None, Query()] = None,
             amount_min: YEN = None, amount_max: YEN = None,
             counterparty: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
             cursor: Annotated[str | None, Query(max_length=200)] = None,
             limit: Limit = 50) -> Response:
    if month is not None:
        found = ctx.read_models.invoices_for_month(Month.parse(month), limit=limit + 1, after=starting_after)
        body = envelope([invoice_resource(i) for i in jsonable(found)], limit, lambda i: i["id"], "/v1/invoices")
        return JSONResponse({"month": month, **body, "invoices": body["data"]})
    if issued_from is not None and issued_to is not None and issued_from > issued_to:
        raise InvalidInput("rule book 13", "issued_from must not be after issued_to", "issued_from")
    if amount_min is not None and amount_max is not None and amount_min > amount_max:
        raise InvalidInput("rule book 13", "amount_min must not exceed amount_max", "amount_min")
    page = ctx.read_models.search_invoices(
        issued_from=issued_from, issued_to=issued_to, amount_min=amount_min, amount_max=amount_max,
        counterparty=counterparty, after=_after(cursor), limit=limit + 1)
    body = envelope([invoice_resource(i) for i in jsonable(page)], limit,
                    lambda i: _cursor(i["issued_on"], i["number"]), "/v1/invoices")
    return JSONResponse({**body, "invoices": body["data"]})


@router.get("/invoices/{invoice_id}.pdf", summary="The printable document (PDF, Japanese)",
            response_class=Response,
            responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
            **roles(*READERS))
def invoice_pdf(invoice_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    invoice = ctx.read_models.invoice(invoice_id)
    recipient = (invoice.recipient or "") if who.sees_personal_data else REDACTED_VALUE
    try:
        body = render_invoice_pdf(invoice, recipient, getattr(ctx.services.settings, "invoice_font_path", None))
    except FontMissing as exc:
        raise ApiProblem(503, "unavailable", exc.message) from None
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"'})


@router.get("/invoices/{invoice_id}", summary="One issued invoice or credit note, as issued",
            response_model=r.IssuedInvoice, **roles(*READERS))
def invoice(invoice_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    found = ctx.read_models.invoice(invoice_id)
    data = ctx.read_models.render_invoice(found)
    data["recipient"] = personal(found.recipient or "", who)
    return JSONResponse(invoice_resource(jsonable(data)))


# -- corrections never edit (rule book 6.1); late interest (rule book 6, Art. 9.4) ------------------------
def _issued_outcome(ctx: ApiContext, result: CommandResult, invoice_id: uuid.UUID | None = None,
                    **extra: Any) -> Outcome:
    contract = ctx.app.get_contract(result.aggregate_id, version=result.version)
    new = next(reversed(contract.ledger.invoices)) if invoice_id is None else invoice_id
    invoice = contract.ledger.invoices[new]
    body = {"contract_id": str(result.aggregate_id), "version": result.version, "position": result.position,
            "events": result.events, "invoice_id": str(invoice.invoice_id), "number": invoice.number,
            "total": invoice.total, **extra}
    return Outcome(body=body, status=201 if invoice_id is None else 200, position=result.position,
                   headers={"ETag": etag(result.version)})


def _contract_of(ctx: ApiContext, invoice_id: uuid.UUID) -> uuid.UUID:
    return ctx.read_models.invoice(invoice_id).contract_id


def _issue_for(ctx: ApiContext, request: Request, who: Principal, body: BaseModel, invoice_id: uuid.UUID,
               issue: Callable[[uuid.UUID], CommandResult]) -> Response:
    """Run ``issue`` (given the contract of ``invoice_id``) as an idempotent command whose answer is
    the new document it issued for ``invoice_id`` (a corrected invoice or a credit note): 201,
    naming ``original``."""
    def act() -> Outcome:
        return _issued_outcome(ctx, issue(_contract_of(ctx, invoice_id)), original=str(invoice_id))
    return run_command(ctx, request, who, body, act)


@router.post("/invoices/{invoice_id}/void", summary="Void an invoice before any payment, with a reason (operator)",
             response_model=CommandOut, **roles(*OPERATORS))
def void(invoice_id: uuid.UUID, body: ReasonIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        result = ctx.app.void_invoice(_contract_of(ctx, invoice_id), invoice_id, body.reason, ctx.now(), expected)
        return _issued_outcome(ctx, result, invoice_id, status="void")
    return run_command(ctx, request, who, body, act)


@router.post("/invoices/{invoice_id}/corrections", status_code=201,
             summary="Issue a corrected invoice (修正インボイス) replacing an unpaid one (operator)",
             response_model=CommandOut, **roles(*OPERATORS))
def correct(invoice_id: uuid.UUID, body: CorrectionIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)
    lines = [InvoiceLine(x.kind, "rule book 6.1 corrected invoice", x.description, x.quantity * x.unit_price,
                         x.quantity, x.unit_price, tax_rate(x.tax_rate, "lines")) for x in body.lines]
    return _issue_for(ctx, request, who, body, invoice_id, lambda contract_id: ctx.app.correct_invoice(
        contract_id, invoice_id, lines, body.reason, ctx.now(), expected))


@router.post("/invoices/{invoice_id}/credit-notes", status_code=201,
             summary="Issue a credit note (返還インボイス) for a discount or credit after issue (operator)",
             response_model=CommandOut, **roles(*OPERATORS))
def credit_note(invoice_id: uuid.UUID, body: CreditNoteIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)
    rate = None if body.tax_rate is None else tax_rate(body.tax_rate, "tax_rate")
    return _issue_for(ctx, request, who, body, invoice_id, lambda contract_id: ctx.app.issue_credit_note(
        contract_id, invoice_id, body.amount, body.reason, ctx.now(), expected, rate))


@router.post("/invoices/{invoice_id}/interest-waiver",
             summary="Waive the settled late interest of an invoice, with a reason (operator, Art. 9.4)",
             response_model=CommandOut, **roles(*OPERATORS))
def waive_interest(invoice_id: uuid.UUID, body: ReasonIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        cid = _contract_of(ctx, invoice_id)
        before = ctx.app.get_contract(cid).ledger.invoices[invoice_id].interest_waived
        result = ctx.app.waive_interest(cid, invoice_id, body.reason, ctx.now(), expected)
        after = ctx.app.get_contract(cid, version=result.version).ledger.invoices[invoice_id].interest_waived
        return _issued_outcome(ctx, result, invoice_id, waived=after - before)
    return run_command(ctx, request, who, body, act)


@router.post("/contracts/{contract_id}/interest-invoice", status_code=201,
             summary="Bill the settled late interest now, on an interest invoice of its own (Art. 9.4)",
             response_model=CommandOut, **roles(*WRITERS))
def interest_invoice(contract_id: uuid.UUID, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)
    return run_command(ctx, request, who, None,
                       lambda: _issued_outcome(ctx, ctx.app.bill_interest(contract_id, ctx.now(), expected)))
