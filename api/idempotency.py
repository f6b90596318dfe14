"""Running a command over HTTP: Idempotency-Key, If-Match, problem responses, read-your-writes.

Idempotency-Key (Stripe semantics), optional on every POST, scoped to the calling key's name:
- the key is claimed atomically (``INSERT ... ON CONFLICT DO NOTHING`` in ``idempotency_keys``)
  *before* the command runs; a second request with the same key while the first still runs
  gets 409 (``Retry-After: 1``);
- a finished request's response (status, ETag/Location, body) is stored and replayed for a
  retry with the same key and the same request (``Idempotent-Replayed: true``); no second
  event is stored;
- the same key with another request (method, path, canonical JSON body, If-Match) is 422;
- responses that are final are stored: successes and business refusals (404, 409 rule
  violation, 422 invalid input). Transient outcomes release the key so a retry runs again:
  a concurrency conflict (409 race / 412 stale If-Match) and unexpected errors (500);
- a request whose body fails validation never claims the key (nothing ran, nothing stored);
- the command's events are saved together with a ``CommandReceipt`` for the key in one
  transaction (application.command_receipts), so a request that died after committing but
  before storing its response is answered from the receipt and never applied twice;
- the receipt records the request's fingerprint and outlives the key's record: after the
  retention a request with the same key and the same fingerprint is answered from the receipt
  (``"recovered": true``), one with another fingerprint is refused 422 (the key is still
  remembered with the request it applied), so an expired key never answers "done" for a
  command that was not run (issue 14 item 2);
- keys are kept ``idempotency_retention`` (24 h), then purged (opportunistically, at most
  every 10 minutes per process); an in-progress claim older than ``idempotency_stale_after``
  (its process died) may be taken over by a retry of the same request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from api.auth import Principal
from api.context import ApiContext
from api.errors import PROBLEM_JSON, ApiProblem, domain_problem
from api.json_body import dumps
from application.actors import Actor, acting_as
from application.command_receipts import receipt_scope
from domain.errors import ConcurrencyConflict, DomainError

log = logging.getLogger("api")

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, like Stripe's keys (UUIDs recommended)
_STORED_HEADERS = ("etag", "location", "content-type")
_PURGE_EVERY = timedelta(minutes=10)


@dataclass
class Outcome:
    """What a successful command answers."""

    body: dict[str, Any]
    status: int = 200
    position: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    replay_body: dict[str, Any] | None = None  # stored for replays instead of ``body`` (a secret shown once)


def parse_if_match(request: Request) -> int | None:
    """``If-Match: "7"`` (or ``7``, ``W/"7"``) -> expected version 7; ``*`` or absent -> None."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 12:
        raise ApiProblem(422, "invalid-request", 'If-Match must be an ETag such as "3" (the contract version)',
                         field="If-Match")
    return int(text)


def etag(version: int) -> str:
    return f'"{version}"'


def _request_hash(request: Request, payload: BaseModel | None) -> str:
    canonical = json.dumps({
        "method": request.method,
        "path": request.url.path,
        "body": payload.model_dump(mode="json") if payload is not None else None,
        "if_match": request.headers.get("if-match"),
    }, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _json(status: int, body: Mapping[str, Any], headers: Mapping[str, str], media_type: str) -> Response:
    return Response(dumps(body), status_code=status, headers=dict(headers), media_type=media_type)


def _maybe_purge(ctx: ApiContext, now: datetime) -> None:
    with ctx.lock:
        last = ctx.last_purge
        if last is not None and now - last < _PURGE_EVERY:
            return
        ctx.last_purge = now
    removed = ctx.store.purge_idempotency(now - ctx.idempotency_retention)
    if removed:
        log.info("purged %d idempotency keys older than %s", removed, ctx.idempotency_retention)


def run_command(ctx: ApiContext, request: Request, principal: Principal, payload: BaseModel | None,
                action: Callable[[], Outcome]) -> Response:
    """Run ``action`` once per Idempotency-Key; answer JSON or problem+json."""
    with acting_as(Actor.api_key(principal.name, principal.role)):  # section 13: events record the key
        return _run_command(ctx, request, principal, payload, action)


def _run_command(ctx: ApiContext, request: Request, principal: Principal, payload: BaseModel | None,
                 action: Callable[[], Outcome]) -> Response:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not _KEY.match(key):
        raise ApiProblem(422, "invalid-request", "Idempotency-Key must be 1-255 visible ASCII characters",
                         field=IDEMPOTENCY_HEADER)
    if key is None:
        return _execute(ctx, request, action)[0]

    wall = datetime.now(UTC)
    _maybe_purge(ctx, wall)
    request_hash = _request_hash(request, payload)
    held = ctx.store.claim_idempotency(key, principal.name, request_hash, wall,
                                       stale_before=wall - ctx.idempotency_stale_after,
                                       expired_before=wall - ctx.idempotency_retention)
    if held is not None:
        if held.request_hash != request_hash:
            raise ApiProblem(422, "idempotency-key-reused", "this Idempotency-Key was used with another request "
                             "(method, path, body or If-Match); use a new key", field=IDEMPOTENCY_HEADER)
        if held.status != "done" or held.response_status is None or held.response_body is None:
            raise ApiProblem(409, "idempotency-in-progress", "a request with this Idempotency-Key is still "
                             "being processed; retry later", field=IDEMPOTENCY_HEADER,
                             headers={"Retry-After": "1"})
        headers = dict(held.response_headers)
        media_type = headers.pop("content-type", "application/json")
        headers["Idempotent-Replayed"] = "true"
        return Response(held.response_body, status_code=held.response_status, headers=headers,
                        media_type=media_type)

    receipt_key = f"idempotency\x1f{principal.name}\x1f{key}"
    applied = ctx.app.find_receipt(receipt_key)
    if applied is not None:
        if not applied.same_request(request_hash):
            # The key's record expired (or was released) but a command was applied under it: the
            # key is still remembered, with that command's request. Never answer "done" for a
            # command that was not run, and never run a second command under the same key.
            ctx.store.release_idempotency(key, principal.name)
            raise ApiProblem(422, "idempotency-key-reused", "this Idempotency-Key was already used for another "
                             "request that was applied (its stored response has expired); use a new key",
                             field=IDEMPOTENCY_HEADER)
        # The first request committed its events but died before storing its response:
        # answer from the receipt instead of running the command again.
        response = _json(200, {"recovered": True, "aggregate_id": str(applied.aggregate_id),
                               "version": applied.applied_version,
                               "detail": "this request was already applied; its original response was lost"},
                         {"ETag": etag(applied.applied_version)}, "application/json")
        _store(ctx, key, principal, response)
        return response
    try:
        with receipt_scope(receipt_key, request_hash):
            response, final = _execute(ctx, request, action, on_stored=lambda r: _store(ctx, key, principal, r))
    except BaseException:
        ctx.store.release_idempotency(key, principal.name)
        raise
    if not final:
        ctx.store.release_idempotency(key, principal.name)
    return response


def _store(ctx: ApiContext, key: str, principal: Principal, response: Response) -> None:
    headers = {k: v for k, v in response.headers.items() if k in _STORED_HEADERS}
    ctx.store.finish_idempotency(key, principal.name, response.status_code, headers, bytes(response.body))


def _execute(ctx: ApiContext, request: Request, action: Callable[[], Outcome],
             on_stored: Callable[[Response], None] | None = None) -> tuple[Response, bool]:
    """Run the action; returns the response and whether it is final (worth replaying)."""
    try:
        outcome = action()
    except DomainError as exc:
        status, body = domain_problem(exc, request.url.path)
        response = _json(status, body, {}, PROBLEM_JSON)
        final = not isinstance(exc, ConcurrencyConflict)
        if final and on_stored is not None:
            on_stored(response)
        return response, final
    headers = dict(outcome.headers)
    if outcome.position is not None:
        headers["X-Position"] = str(outcome.position)
    response = _json(outcome.status, outcome.body, headers, "application/json")
    if on_stored is not None:  # stored before waiting: a crash while waiting still replays
        on_stored(response if outcome.replay_body is None
                  else _json(outcome.status, outcome.replay_body, headers, "application/json"))
    if not ctx.settle(outcome.position):
        response.headers["X-Read-Models-Lagging"] = "true"
    return response, True
