"""SLA (Art. 20): outages, claims and the provider's decision."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from api import resources as r
from api.auth import OPERATORS, READERS, WRITERS, Principal, current_principal, roles
from api.context import ApiContext, context
from api.idempotency import Outcome, etag, parse_if_match, run_command
from api.json_body import JSONResponse
from api.routes.contracts import command_outcome, last_event
from api.schemas import PROBLEM_RESPONSES, ClaimIn, DecisionIn, OutageIn
from api.views import claim_resource, jsonable
from domain.contract import ContractEvents
from domain.errors import NotFound
from domain.sla import OutageCause, Remedy

router = APIRouter(tags=["sla"], responses=PROBLEM_RESPONSES)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(current_principal)]


@router.post("/v1/outages", status_code=201, summary="Record an outage of a service, once (spec 8)",
             response_model=r.OutageResult, **roles(*WRITERS))
def record_outage(body: OutageIn, request: Request, ctx: Ctx, who: Who) -> Response:
    def act() -> Outcome:
        result = ctx.app.record_outage(body.service, body.started_at, body.ended_at, OutageCause(body.cause),
                                       ctx.now())
        outage = ctx.app.get_outage(result.aggregate_id).facts
        body_out = {"outage_id": str(result.aggregate_id), "version": result.version,
                    "position": result.position, "events": result.events,
                    "service": outage.service, "breaches": outage.breaches,
                    "breach_date": jsonable(outage.breach_date) if outage.breaches else None,
                    "credit_days": outage.credit_days if outage.breaches else 0}
        return Outcome(body_out, 201, result.position, {"ETag": etag(result.version),
                                                        "Location": f"/v1/outages/{result.aggregate_id}"})
    return run_command(ctx, request, who, body, act)


@router.post("/v1/contracts/{contract_id}/sla-claims", status_code=201,
             summary="Claim an SLA credit for an outage (Art. 20.3)", response_model=r.ClaimResult,
             **roles(*WRITERS))
def claim(contract_id: uuid.UUID, body: ClaimIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        result, assessment = ctx.app.claim_sla(contract_id, body.outage_id, ctx.now(), body.proof_of_payment,
                                               body.proof_of_breach, body.evidence, expected)
        claim_id = ctx.app.claim_id(contract_id, body.outage_id)
        return command_outcome(result, 201, claim_id=str(claim_id), assessment=jsonable(assessment))
    return run_command(ctx, request, who, body, act)


def claim_contract(ctx: ApiContext, claim_id: uuid.UUID) -> uuid.UUID:
    """The contract a claim belongs to (claim ids are derived from contract and outage)."""
    found = ctx.read_models.claim_contract(claim_id)
    if found is None:
        raise NotFound("Art. 20.3", "no SLA claim with this id", "claim_id")
    return found


@router.post("/v1/sla-claims/{claim_id}/decision", summary="Decide a claim: remedy and amount (operator)",
             description="Remedy `fee_reduction` (credit on the next invoice), `extension` (service period "
                         "extended by the credit days) or `refund`, and an amount between the claim's minimum "
                         "and maximum (Art. 20.1). Omit both for the POLICY default. An ineligible claim can "
                         "only be rejected (omit both).",
             response_model=r.DecisionResult, **roles(*OPERATORS))
def decide(claim_id: uuid.UUID, body: DecisionIn, request: Request, ctx: Ctx, who: Who) -> Response:
    expected = parse_if_match(request)

    def act() -> Outcome:
        contract_id = claim_contract(ctx, claim_id)
        remedy = Remedy(body.remedy) if body.remedy is not None else None
        result = ctx.app.decide_claim(contract_id, claim_id, remedy, body.amount, ctx.now(), expected)
        e = last_event(ctx, contract_id, result.version)
        status = "granted" if isinstance(e, ContractEvents.CreditGranted) else "rejected"
        decision = {"status": status, "decision": status,  # the claim's word; "decision" kept, deprecated
                    "remedy": getattr(e, "remedy", None), "amount": getattr(e, "amount", None),
                    "reason": getattr(e, "reason", None)}
        outcome = command_outcome(result, claim_id=str(claim_id))
        outcome.body.update(decision)
        return outcome
    return run_command(ctx, request, who, body, act)


@router.get("/v1/outages/{outage_id}", summary="One recorded outage (Art. 20)", response_model=r.Outage,
            **roles(*READERS))
def get_outage(outage_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    outage = ctx.app.get_outage(outage_id)
    facts = outage.facts
    return JSONResponse({
        "id": str(outage_id), "object": "outage", "outage_id": str(outage_id), "service": facts.service,
        "started_at": jsonable(facts.started_at), "ended_at": jsonable(facts.ended_at), "cause": facts.cause.value,
        "breaches": facts.breaches, "breach_date": jsonable(facts.breach_date) if facts.breaches else None,
        "credit_days": facts.credit_days if facts.breaches else 0}, headers={"ETag": etag(outage.version)})


@router.get("/v1/sla-claims/{claim_id}", summary="One SLA claim with its assessment and decision (Art. 20.3)",
            response_model=r.Claim, **roles(*READERS))
def get_claim(claim_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    contract_id = claim_contract(ctx, claim_id)
    for found in jsonable(ctx.read_models.claims(contract_id)):
        if found["claim_id"] == str(claim_id):
            return JSONResponse(claim_resource(found))
    raise NotFound("Art. 20.3", "no such SLA claim", "claim_id")
