"""Operators announce Art. 18 discontinuations and Art. 28 terms changes; customers object to a
terms change (Art. 28: they may terminate before it takes effect, bypassing Art. 8.3 and 10).
Each announcement is pushed to the subscribed systems (``service.discontinuation_announced``,
``terms.change_announced``; docs/webhooks.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import Field, StrictStr
from starlette.responses import Response

from api import resources as r
from api.auth import OPERATORS, WRITERS, Principal, current_principal, roles
from api.context import ApiContext, context
from api.idempotency import Outcome, etag, parse_if_match, run_command
from api.routes.contracts import command_outcome
from api.schemas import PROBLEM_RESPONSES, Body, Code, CommandOut, IsoDate
from api.views import jsonable

router = APIRouter(tags=["announcements"], responses=PROBLEM_RESPONSES)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(current_principal)]
Version = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class DiscontinuationIn(Body):
    service: Code
    discontinue_on: IsoDate = Field(description="at least 3 calendar months after today (JST), Art. 18")


class TermsChangeIn(Body):
    version: Version
    effective_on: IsoDate = Field(description="after today (JST), Art. 28")
    summary: Annotated[StrictStr, Field(min_length=1, max_length=2000)]


class ObjectionIn(Body):
    version: Version = Field(description="the announced terms version objected to")


@router.post("/v1/service-discontinuations", status_code=201, summary="Announce the discontinuation of a "
             "service (Art. 18, operator)", response_model=r.DiscontinuationResult, **roles(*OPERATORS))
def announce_discontinuation(body: DiscontinuationIn, request: Request, ctx: Ctx, who: Who) -> Response:
    def act() -> Outcome:
        result = ctx.app.announce_discontinuation(body.service, body.discontinue_on, ctx.now())
        return Outcome({"discontinuation_id": str(result.aggregate_id), "service": body.service,
                        "discontinue_on": jsonable(body.discontinue_on), "announced_on": jsonable(ctx.today()),
                        "version": result.version, "position": result.position},
                       201, result.position, {"ETag": etag(result.version)})
    return run_command(ctx, request, who, body, act)


@router.post("/v1/terms-changes", status_code=201, summary="Announce a terms change (Art. 28, operator)",
             response_model=r.TermsChangeResult, **roles(*OPERATORS))
def announce_terms_change(body: TermsChangeIn, request: Request, ctx: Ctx, who: Who) -> Response:
    def act() -> Outcome:
        result = ctx.app.announce_terms_change(body.version, body.effective_on, body.summary, ctx.now())
        return Outcome({"terms_change_id": str(result.aggregate_id), "version": body.version,
                        "effective_on": jsonable(body.effective_on), "announced_on": jsonable(ctx.today()),
                        "position": result.position},
                       201, result.position, {"ETag": etag(result.version)})
    return run_command(ctx, request, who, body, act)


@router.post("/v1/contracts/{contract_id}/terms-objection", summary="Object to an announced terms change: the "
             "contract ends today, before the change takes effect (Art. 28)", response_model=CommandOut,
             **roles(*WRITERS))
def object_to_terms(contract_id: uuid.UUID, body: ObjectionIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        result = ctx.app.terminate_for_terms_change(contract_id, body.version, ctx.now(), expected)
        contract = ctx.app.get_contract(contract_id, version=result.version)
        return command_outcome(result, state=contract.state.value, ended_on=jsonable(contract.ended_on),
                               terms_version=body.version)
    return run_command(ctx, request, who, body, act)
