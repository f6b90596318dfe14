"""Service-wide reads: the global event feed and deadlines (invoices: ``api.routes.invoices``)."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from datetime import date
from typing import Annotated, Any

from eventsourcing.persistence import Notification
from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from api import resources as r
from api.auth import READERS, Principal, current_principal, roles
from api.context import ApiContext, context
from api.json_body import JSONResponse
from api.lists import envelope
from api.schemas import PROBLEM_RESPONSES, IsoDate
from api.views import event_view, undecodable_view
from application.read_models import Deadline
from application.undecodable import UndecodableEvent, decode_event
from domain.errors import InvalidInput

log = logging.getLogger("api")

router = APIRouter(prefix="/v1", tags=["feeds"], responses=PROBLEM_RESPONSES)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(current_principal)]
MAX_PAGE = 1000
MAX_DEADLINES = 10_000  # the bound this list had before it had a cursor (a client asking that many still may)
RECEIPT_TOPIC_SUFFIX = "CommandReceipt.CommandApplied"


@router.get("/events", summary="Global event feed, ordered by position (cursor: after)",
            description="Returns events with position > `after`, oldest first, at most `limit`. Follow the feed "
                        "by passing the returned `next_after` as `after`. Positions increase monotonically and "
                        "a committed event never appears behind one already returned. A stored event that "
                        "cannot be decoded (damaged in storage) is listed with `undecodable: true`, a "
                        "`reason` and no `data`.",
            response_model=r.EventFeed, **roles(*READERS))
def events(ctx: Ctx, who: Who, after: Annotated[int, Query(ge=0, le=2**62)] = 0,
           limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> Response:
    notifications = ctx.app.recorder.select_notifications(start=after + 1, limit=limit)
    items = [_entry(ctx, n, who) for n in notifications
             if not n.topic.endswith(RECEIPT_TOPIC_SUFFIX)]  # internal proof of a key
    next_after = notifications[-1].id if notifications else after
    has_more = len(notifications) == limit
    return JSONResponse({"object": "list", "url": "/v1/events", "data": items, "has_more": has_more,
                         "next_cursor": str(next_after) if has_more else None,
                         "events": items, "next_after": next_after})


def _entry(ctx: ApiContext, n: Notification, who: Principal) -> dict[str, Any]:
    """One feed entry; a stored event that does not decode is marked, not a failed page (issue 14)."""
    try:
        event = decode_event(ctx.app.mapper, n, position=n.id)
    except UndecodableEvent as damaged:
        log.warning("feed: event at position %d does not decode (%s)", n.id, damaged.reason)
        return undecodable_view(damaged, position=n.id, topic=n.topic)
    return event_view(event, who, position=n.id, topic=n.topic)


@router.get("/deadlines", summary="Open deadlines due on or before a date, one page in due order",
            description="Ordered by due date, kind, aggregate and reference. Pass `next_cursor` as "
                        "`starting_after` for the next page (an opaque text: send it back as it came).",
            response_model=r.Deadlines, **roles(*READERS))
def deadlines(ctx: Ctx, who: Who, until: Annotated[IsoDate, Query(description="YYYY-MM-DD")],
              limit: Annotated[int, Query(ge=1, le=MAX_DEADLINES, description=f"page size (default 50, at most "
                                                                               f"{MAX_DEADLINES})")] = 50,
              starting_after: Annotated[str | None, Query(max_length=400, description="a next_cursor")] = None
              ) -> Response:
    after = deadline_cursor(starting_after) if starting_after is not None else None
    found = ctx.read_models.deadlines_until(until, limit + 1, after=after)
    items = [{"object": "deadline", "due_on": d.due_on.isoformat(), "kind": d.kind,
              "aggregate_id": str(d.aggregate_id), "ref": d.ref} for d in found]
    body = envelope(items, limit, _cursor_of, "/v1/deadlines")
    return JSONResponse({"until": until.isoformat(), **body, "deadlines": body["data"]})


def _cursor_of(item: dict[str, Any]) -> str:
    text = json.dumps([item["due_on"], item["kind"], item["aggregate_id"], item["ref"]], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def deadline_cursor(text: str) -> Deadline:
    """The deadline a ``next_cursor`` names; anything else is 422 naming ``starting_after``."""
    try:
        due_on, kind, aggregate_id, ref = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return Deadline(date.fromisoformat(due_on), str(kind), uuid.UUID(aggregate_id), str(ref))
    except (ValueError, TypeError, AttributeError) as bad:  # binascii and json errors are ValueErrors
        raise InvalidInput("rule book 3", "starting_after is not a cursor this list answered",
                           "starting_after") from bad

