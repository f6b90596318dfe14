"""Webhooks (spec 12, docs/webhooks.md): endpoints, their delivery log and redelivery (operator);
the notification types (every role)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, StrictBool, StrictInt, StrictStr
from starlette.responses import Response

from api import resources as r
from api.auth import OPERATORS, READERS, Principal, current_principal, roles
from api.context import ApiContext, context
from api.idempotency import Outcome, run_command
from api.json_body import JSONResponse
from api.schemas import PROBLEM_RESPONSES, Body
from api.views import jsonable
from application.notifications.ports import ALL_TYPES, CANCELLED, DELIVERED, FAILED, PENDING
from application.notifications.service import Webhooks, delivery_view, endpoint_view, types_view
from domain.errors import NotFound

router = APIRouter(tags=["webhooks"], responses=PROBLEM_RESPONSES)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(current_principal)]
TypeName = Annotated[StrictStr, Field(min_length=1, max_length=100, pattern=r"^(\*|[a-z_]+\.[a-z_]+)$")]
Url = Annotated[StrictStr, Field(min_length=1, max_length=2000, examples=["https://billing.example.com/hooks"])]
SECRET_NOTE = ("the secret is shown once, in this response; it cannot be read again (roll it to get a new one)")
REPLAY_NOTE = "the secret was shown in the first response only; roll the secret if it was lost"


class EndpointIn(Body):
    url: Url
    event_types: Annotated[list[TypeName], Field(min_length=1, max_length=50,
                                                 description=f"notification types, or [{ALL_TYPES!r}] for all")]
    description: Annotated[StrictStr, Field(max_length=500)] = ""
    personal_data: StrictBool = Field(default=False, description="may receive personal fields (otherwise "
                                      "they read \"[redacted]\")")


class EndpointPatch(Body):
    url: Url | None = None
    event_types: Annotated[list[TypeName], Field(min_length=1, max_length=50)] | None = None
    description: Annotated[StrictStr, Field(max_length=500)] | None = None
    personal_data: StrictBool | None = None


class DisableIn(Body):
    reason: Annotated[StrictStr, Field(max_length=500)] = "disabled by an operator"


class RollIn(Body):
    overlap_seconds: Annotated[StrictInt, Field(ge=0, le=7 * 86400, description="how long the current secret "
                                                "keeps signing beside the new one (default 24 h)")] | None = None


class RedeliverIn(Body):
    notification_id: uuid.UUID | None = None
    from_position: Annotated[StrictInt, Field(ge=1, le=2**62)] | None = None
    to_position: Annotated[StrictInt, Field(ge=1, le=2**62)] | None = None


def webhooks(ctx: ApiContext) -> Webhooks:
    found: Webhooks | None = getattr(ctx, "webhooks", None)
    if found is None:
        raise NotFound("rule book 12", "webhooks are not configured in this process", "webhooks")
    return found


def _kick(ctx: ApiContext) -> None:
    kick = getattr(getattr(ctx, "webhook_worker", None), "kick", None)
    if callable(kick):
        kick()


@router.get("/v1/webhook-types", summary="Notification types: names, payload versions, articles",
            response_model=r.WebhookTypes, **roles(*READERS))
def list_types(ctx: Ctx, who: Who) -> Response:
    return JSONResponse({"types": types_view()})


@router.post("/v1/webhook-endpoints", status_code=201, summary="Register a webhook endpoint (operator); "
             "the response shows its signing secret, once", response_model=r.WebhookEndpoint,
             **roles(*OPERATORS))
def register(body: EndpointIn, request: Request, ctx: Ctx, who: Who) -> Response:
    hooks = webhooks(ctx)

    def act() -> Outcome:
        endpoint, secret = hooks.admin.register(body.url, body.event_types, hooks.clock.now(), who.name,
                                                description=body.description, personal_data=body.personal_data)
        view = endpoint_view(endpoint)
        return Outcome({**view, "secret": secret, "secret_note": SECRET_NOTE}, 201,
                       headers={"Location": f"/v1/webhook-endpoints/{endpoint.endpoint_id}"},
                       replay_body={**view, "secret": None, "secret_note": REPLAY_NOTE})
    return run_command(ctx, request, who, body, act)


@router.get("/v1/webhook-endpoints", summary="Webhook endpoints (never their secrets)",
            response_model=r.WebhookEndpoints, **roles(*OPERATORS))
def list_endpoints(ctx: Ctx, who: Who) -> Response:
    return JSONResponse({"endpoints": [endpoint_view(e) for e in webhooks(ctx).store.list_endpoints()]})


@router.get("/v1/webhook-endpoints/{endpoint_id}", summary="One endpoint, with its change log",
            response_model=r.WebhookEndpointDetail, **roles(*OPERATORS))
def get_endpoint(endpoint_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    hooks = webhooks(ctx)
    endpoint = hooks.admin.get(endpoint_id)
    log = [{"at": jsonable(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}
           for e in hooks.store.endpoint_log(endpoint_id)]
    return JSONResponse({**endpoint_view(endpoint), "log": log})


@router.patch("/v1/webhook-endpoints/{endpoint_id}", summary="Change an endpoint's URL, types, description "
              "or personal-data flag", response_model=r.WebhookEndpoint, **roles(*OPERATORS))
def update_endpoint(endpoint_id: uuid.UUID, body: EndpointPatch, ctx: Ctx, who: Who) -> Response:
    hooks = webhooks(ctx)
    updated = hooks.admin.update(endpoint_id, hooks.clock.now(), who.name, url=body.url,
                                         event_types=body.event_types, description=body.description,
                                         personal_data=body.personal_data)
    return JSONResponse(endpoint_view(updated))


@router.post("/v1/webhook-endpoints/{endpoint_id}/disable", summary="Stop sending to an endpoint (its "
             "notifications wait)", response_model=r.WebhookEndpoint,
             **roles(*OPERATORS))
def disable(endpoint_id: uuid.UUID, request: Request, ctx: Ctx, who: Who, body: DisableIn | None = None
            ) -> Response:
    hooks = webhooks(ctx)
    reason = body.reason if body is not None else "disabled by an operator"
    return run_command(ctx, request, who, body, lambda: Outcome(endpoint_view(
        hooks.admin.disable(endpoint_id, hooks.clock.now(), who.name, reason))))


@router.post("/v1/webhook-endpoints/{endpoint_id}/enable", summary="Send to an endpoint again (its waiting "
             "notifications first, oldest first)", response_model=r.WebhookEndpoint,
             **roles(*OPERATORS))
def enable(endpoint_id: uuid.UUID, request: Request, ctx: Ctx, who: Who) -> Response:
    hooks = webhooks(ctx)

    def act() -> Outcome:
        view = endpoint_view(hooks.admin.enable(endpoint_id, hooks.clock.now(), who.name))
        _kick(ctx)
        return Outcome(view)
    return run_command(ctx, request, who, None, act)


@router.delete("/v1/webhook-endpoints/{endpoint_id}", status_code=204, summary="Delete an endpoint (pending "
               "deliveries are cancelled; its delivery log is kept)", **roles(*OPERATORS))
def delete(endpoint_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    hooks = webhooks(ctx)
    hooks.admin.delete(endpoint_id, hooks.clock.now(), who.name)
    return Response(status_code=204)


@router.post("/v1/webhook-endpoints/{endpoint_id}/roll-secret", summary="A new signing secret, shown once; "
             "the current one keeps signing for the overlap (two v1= signatures)", response_model=r.WebhookEndpoint,
             **roles(*OPERATORS))
def roll_secret(endpoint_id: uuid.UUID, request: Request, ctx: Ctx, who: Who, body: RollIn | None = None
                ) -> Response:
    hooks = webhooks(ctx)
    default = getattr(ctx.services.settings, "webhook_secret_overlap_hours", 24.0)
    seconds = body.overlap_seconds if body is not None and body.overlap_seconds is not None else default * 3600

    def act() -> Outcome:
        now = hooks.clock.now()
        secret = hooks.admin.roll_secret(endpoint_id, timedelta(seconds=seconds), now, who.name)
        view = endpoint_view(hooks.admin.get(endpoint_id))
        return Outcome({**view, "secret": secret, "secret_note": SECRET_NOTE},
                       replay_body={**view, "secret": None, "secret_note": REPLAY_NOTE})
    return run_command(ctx, request, who, body, act)


@router.get("/v1/webhook-endpoints/{endpoint_id}/deliveries", summary="The endpoint's delivery log, by "
            "position (cursor: after)", response_model=r.Deliveries, **roles(*OPERATORS))
def deliveries(endpoint_id: uuid.UUID, ctx: Ctx, who: Who,
               after: Annotated[int, Query(ge=0, le=2**62)] = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               status: Annotated[Literal["pending", "delivered", "failed", "cancelled"] | None, Query()] = None
               ) -> Response:
    hooks = webhooks(ctx)
    hooks.admin.get(endpoint_id)
    found = hooks.store.deliveries(endpoint_id, after, limit, status)
    return JSONResponse({"endpoint_id": str(endpoint_id), "deliveries": [delivery_view(d) for d in found],
                         "next_after": found[-1].row.position if found else after, "has_more": len(found) == limit,
                         "statuses": [PENDING, DELIVERED, FAILED, CANCELLED]})


@router.get("/v1/webhook-endpoints/{endpoint_id}/deliveries/{notification_id}", summary="One notification's "
            "delivery: every attempt with status code and latency", response_model=r.Delivery, **roles(*OPERATORS))
def delivery(endpoint_id: uuid.UUID, notification_id: uuid.UUID, ctx: Ctx, who: Who) -> Response:
    return JSONResponse(delivery_view(webhooks(ctx).delivery(endpoint_id, notification_id), history=True))


@router.post("/v1/webhook-endpoints/{endpoint_id}/redeliver", summary="Send again one notification, or "
             "every notification of the endpoint's types in a position range", response_model=r.RedeliverResult,
             **roles(*OPERATORS))
def redeliver(endpoint_id: uuid.UUID, body: RedeliverIn, request: Request, ctx: Ctx, who: Who) -> Response:
    hooks = webhooks(ctx)

    def act() -> Outcome:
        count = hooks.redeliver(endpoint_id, hooks.clock.now(), notification_id=body.notification_id,
                                        from_position=body.from_position, to_position=body.to_position)
        _kick(ctx)
        return Outcome({"endpoint_id": str(endpoint_id), "queued": count})
    return run_command(ctx, request, who, body, act)


def notices_of(ctx: ApiContext, contract: Any) -> list[dict[str, Any]] | None:
    """The Art. 9.5 / 18 / 28 notices of a contract and their deliveries (None: no webhooks here)."""
    hooks: Webhooks | None = getattr(ctx, "webhooks", None)
    return None if hooks is None else hooks.notices(contract)

