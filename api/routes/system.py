"""Health, readiness and the service clock (settable in sandbox mode only)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from api import resources as r
from api.auth import READERS, WRITERS, Principal, current_principal, roles
from api.context import ApiContext, context
from api.errors import ApiProblem, problem_body, problem_response
from api.json_body import JSONResponse
from api.schemas import PROBLEM_RESPONSES, ClockIn
from api.views import jsonable
from domain.calendar import jst_date

log = logging.getLogger("api")
router = APIRouter(tags=["system"])
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(current_principal)]


@router.get("/healthz", summary="Liveness (no key needed)", response_model=r.Status)
def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: the databases answer (no key needed)", response_model=r.Status)
def readyz(ctx: Ctx) -> Response:
    try:
        ctx.store.ping()
        ctx.app.recorder.max_notification_id()
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
        log.warning("readiness check failed: %s", type(exc).__name__)
        return problem_response(503, problem_body(503, "not-ready", "the database is not reachable",
                                                  instance="/readyz"))
    return JSONResponse({"status": "ready"})


def _clock_view(ctx: ApiContext) -> dict[str, Any]:
    now = ctx.now()
    return {"now": jsonable(now), "today": jst_date(now).isoformat(), "mode": ctx.mode, "settable": ctx.sandbox}


@router.get("/v1/clock", summary="The service clock (business time of commands)", tags=["clock"],
            responses=PROBLEM_RESPONSES, response_model=r.ClockResource, **roles(*READERS))
def get_clock(ctx: Ctx, who: Who) -> Response:
    return JSONResponse(_clock_view(ctx))


@router.put("/v1/clock", summary="Set the service clock (sandbox mode only)", tags=["clock"],
            description="Sandbox mode (`CONTRACTS_MODE=sandbox`) only: moves the shared service clock to `now` "
                        "(forward only, like a test clock; it then stays there). Every later command uses it as "
                        "its business time. In production mode this is refused with 403 "
                        "(`urn:contracts:problem:sandbox-only`).",
            responses=PROBLEM_RESPONSES, response_model=r.ClockResource, **roles(*WRITERS))
def set_clock(body: ClockIn, ctx: Ctx, who: Who) -> Response:
    setter = getattr(ctx.clock, "set", None)
    if not ctx.sandbox or setter is None:
        raise ApiProblem(403, "sandbox-only", "the service clock can only be set in sandbox mode "
                         "(CONTRACTS_MODE=sandbox)", title="Sandbox only")
    setter(body.now)
    log.info("sandbox clock set to %s by %s", body.now.isoformat(), who.name)
    return JSONResponse(_clock_view(ctx))


@router.get("/v1/catalog", summary="The catalog: services, grades, prices and the tax rate", tags=["catalog"],
            responses=PROBLEM_RESPONSES, response_model=r.CatalogResource, **roles(*READERS))
def get_catalog(ctx: Ctx, who: Who) -> Response:
    plans = ctx.app.catalog.plans
    services = []
    for service in ctx.app.catalog.services():
        grades = [plans[key] for key in sorted(plans, key=lambda k: (plans[k].rank, k[1])) if key[0] == service]
        services.append({"object": "service", "id": service, "grades": [
            {"grade": p.grade, "monthly_price": p.monthly_price, "annual_price": p.annual_price,
             "initial_fee": p.initial_fee, "min_users": p.min_users, "trial_days": p.trial_days, "beta": p.beta,
             "sla_eligible": p.sla_eligible, "campaign": jsonable(p.to_dict()["campaign"])} for p in grades]})
    return JSONResponse({"object": "catalog", "tax_rate": str(ctx.app.policy.tax_rate), "data": services})
