"""The one set of exception handlers: every error leaves as RFC 9457 ``application/problem+json``.

Body: ``{type, title, status, detail, article, field, instance}``; ``article`` names the rule a
refused business command breaks (``Art. 10.1.2``, ``spec 8``), ``field`` the offending input; a
refusal that points at something already recorded adds its id as an extension member (e.g.
``existing_outage_id``).
Validation errors add ``errors: [{field, message}]``; a 500 adds ``incident``, an id that is
also in the log next to the stack trace, which the response never contains. Submitted values
are never echoed back (they may be personal data).
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.json_body import dumps
from application.undecodable import UndecodableEvent
from domain.errors import ConcurrencyConflict, DomainError, InvalidInput, NotFound, RuleViolation
from infrastructure.persistence.pool_health import DatabaseUnavailable

log = logging.getLogger("api")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:contracts:problem:"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
}


# The database cannot be reached right now (server stopped or restarting, connection lost, no
# pooled connection within the pool timeout: psycopg_pool.PoolTimeout is a psycopg.OperationalError).
# Transient: answered 503 with Retry-After, never 500 (issue 8).
# ``DatabaseUnavailable``: the event store's pool gave no connection within its timeout (final, not retried).
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError,
                                                     StoreOperationalError, StoreInterfaceError, DatabaseUnavailable)
RETRY_AFTER_SECONDS = 2
STORAGE_FULL_RETRY_AFTER_SECONDS = 30

# SQLite result codes of a store that cannot take a write right now (the API store and the CLI talk
# to SQLite directly, not through the library's error translation): disk full, I/O error, busy.
# Other ``sqlite3.OperationalError``s (a syntax error, a missing table) are bugs: 500 with an incident.
_SQLITE_UNAVAILABLE = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY,
                                 sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN})


def storage_full(exc: BaseException) -> bool:
    """The database has no room: SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100) or
    out_of_memory/insufficient_resources class 53, as raised or as the library re-raised them."""
    for e in (exc, exc.__cause__, exc.__context__):
        if isinstance(e, sqlite3.OperationalError) and getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if isinstance(e, psycopg.Error) and (getattr(e, "sqlstate", None) or "").startswith("53"):
            return True
    return False


def unavailable(exc: BaseException) -> bool:
    """Transient: the database cannot be reached or cannot take a write right now (answer 503)."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return True
    return isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) in _SQLITE_UNAVAILABLE


class ApiProblem(Exception):
    """An API-level refusal (authentication, roles, idempotency, sandbox) as a problem."""

    def __init__(self, status: int, kind: str, detail: str, *, title: str | None = None,
                 article: str | None = None, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.title = status, kind, detail, title
        self.article, self.field, self.headers = article, field, dict(headers or {})


def problem_body(status: int, kind: str, detail: str, *, title: str | None = None, article: str | None = None,
                 field: str | None = None, instance: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": TYPE_PREFIX + kind,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "article": article,
        "field": field,
        "instance": instance,
        **extra,
    }


def problem_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def route_label(scope: Mapping[str, Any]) -> str:
    """The matched route's template (``/v1/contracts/{contract_id}``) for log lines: never the
    request's own path, which is client text (a percent-encoded newline forged a log line)."""
    template = getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else "(before routing)"


def unavailable_response(method: str, path: str, exc: BaseException, route: str = "(before routing)") -> Response:
    """503 problem for a database that cannot be reached or is full (the reason goes to the log, by
    type only: never the message, which may quote a value; the route template, not the path)."""
    if storage_full(exc):
        log.error("database full on %s %s (%s): answered 503", method, route, type(exc).__name__)
        body = problem_body(503, "service-unavailable", "the database has no room to store this request right "
                            "now; retry later", instance=path)
        return problem_response(503, body, {"Retry-After": str(STORAGE_FULL_RETRY_AFTER_SECONDS)})
    log.warning("database unavailable on %s %s (%s): answered 503", method, route, type(exc).__name__)
    body = problem_body(503, "service-unavailable", "the database cannot be reached right now; retry later",
                        instance=path)
    return problem_response(503, body, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def undecodable_response(path: str, exc: UndecodableEvent) -> Response:
    """A stored event of this aggregate does not decode (damaged in storage, issue 14): this
    aggregate cannot be read or changed until it is repaired; every other one still can."""
    log.warning("stored event undecodable: aggregate %s version %d (%s)", exc.aggregate_id, exc.version,
                exc.reason)
    body = problem_body(500, "event-undecodable", f"event version {exc.version} of {exc.aggregate_id} is "
                        "damaged in storage and cannot be decoded; `contracts audit verify` names it",
                        title="Stored event cannot be decoded", instance=path,
                        aggregate_id=str(exc.aggregate_id), version=exc.version)
    return problem_response(500, body)


def domain_status(exc: DomainError) -> int:
    if isinstance(exc, ConcurrencyConflict):
        return 412 if exc.field == "If-Match" else 409
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, RuleViolation):
        return 409
    return 400


def domain_problem(exc: DomainError, instance: str | None = None) -> tuple[int, dict[str, Any]]:
    status = domain_status(exc)
    kind = "precondition-failed" if status == 412 else exc.kind
    title = {"rule-violation": "Refused by a business rule", "invalid-input": "Invalid input",
             "not-found": "Not found", "conflict": "Conflict",
             "precondition-failed": "Precondition failed"}.get(kind)
    return status, problem_body(status, kind, exc.message, title=title, article=exc.article, field=exc.field,
                                instance=instance, **exc.refers_to)


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, parts = parts[0], parts[1:]
        if where == "body" and (not parts or parts[0].isdigit()):
            return "body"  # the JSON document itself (e.g. malformed JSON)
    return ".".join(parts) or "body"


def _message_of(error: Mapping[str, Any]) -> str:
    """The validator's message without any part of the submitted value: pydantic's parsing
    errors quote what they found (``... invalid character: ... found `x` at 1``), so only the
    sentence before the first comma is kept for them."""
    message = str(error.get("msg", "invalid"))
    if str(error.get("type", "")).endswith("_parsing") or "`" in message:
        message = message.split(", ", 1)[0].split("`", 1)[0].rstrip(" :")
    return message.removeprefix("Value error, ")


def validation_problem(exc: RequestValidationError, instance: str | None) -> dict[str, Any]:
    errors = [{"field": _field_of(e.get("loc", ())), "message": _message_of(e)} for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_body(422, "invalid-request", detail or first["message"], title="Invalid request",
                        field=first["field"], instance=instance, errors=errors)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _body_not_json(request: Request, exc: RequestValidationError) -> bool:
    """A body was refused and it was not sent as JSON (no or another Content-Type): FastAPI then
    reads it as bytes and reports "Input should be a valid dictionary"; the client's fault is the
    media type (415), not a field."""
    body_errors = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors())
    return body_errors and not _is_json(request.headers.get("content-type", ""))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        status, body = domain_problem(exc, request.url.path)
        return problem_response(status, body)

    @app.exception_handler(ApiProblem)
    async def _api(request: Request, exc: ApiProblem) -> Response:
        body = problem_body(exc.status, exc.kind, exc.detail, title=exc.title, article=exc.article,
                            field=exc.field, instance=request.url.path)
        return problem_response(exc.status, body, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if _body_not_json(request, exc):
            return problem_response(415, problem_body(
                415, "unsupported-media-type", "the request body must be JSON: send Content-Type: application/json",
                field="Content-Type", instance=request.url.path))
        return problem_response(422, validation_problem(exc, request.url.path))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(exc.status_code, problem_body(exc.status_code, kind, detail,
                                                              instance=request.url.path), exc.headers)

    @app.exception_handler(UndecodableEvent)
    async def _undecodable(request: Request, exc: UndecodableEvent) -> Response:
        return undecodable_response(request.url.path, exc)

    async def _unavailable(request: Request, exc: Exception) -> Response:
        return unavailable_response(request.method, request.url.path, exc, route_label(request.scope))

    for error_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error_class, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        if unavailable(exc):  # raised outside the routes (a middleware), or SQLite's own errors
            return unavailable_response(request.method, request.url.path, exc, route_label(request.scope))
        incident = uuid.uuid4().hex
        log.error("incident %s: unhandled error on %s %s", incident, request.method, route_label(request.scope),
                  exc_info=(type(exc), exc, exc.__traceback__))
        body = problem_body(500, "internal-error", "The server failed to handle the request; the incident id "
                            "identifies it in the service log.", instance=request.url.path, incident=incident)
        return problem_response(500, body)
