"""The OpenAPI document as a client generator needs it (issue 19).

FastAPI derives the schemas from the routes; this module completes what it cannot know:

- every error response is ``application/problem+json`` with the ``Problem`` schema (FastAPI puts a
  response model under ``application/json`` and adds its own ``HTTPValidationError`` for 422);
- the statuses any operation can answer (401/403 for keyed operations, 415 and 422 for bodies,
  500, 503 with ``Retry-After``);
- the request headers the routes read themselves (``Idempotency-Key`` on every POST, ``If-Match``
  on commands of one contract) and the response headers (``ETag``, ``X-Position``, ``Location``,
  ``Retry-After``);
- operationIds: camelCase, from ``OPERATION_IDS`` or else the route function's name;
- the models' ``examples`` as written (FastAPI's encoding drops every null, also inside examples).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api import resources, schemas

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_MEDIA = "application/problem+json"

OPERATION_IDS = {
    "apply": "applyForContract",
    "apply_from_trial": "applyFromTrial",
    "approve": "approveContract",
    "reject": "rejectContract",
    "request_change": "requestChange",
    "notice_termination": "noticeTermination",
    "terminate": "terminateForCause",
    "record_payment": "recordPayment",
    "change_contractor": "changeContractor",
    "advance": "advanceContract",
    "get_contract": "getContract",
    "contract_events": "listContractEvents",
    "contract_invoices": "listContractInvoices",
    "contract_claims": "listContractClaims",
    "verify": "verifyContract",
    "disclosure": "getContractDisclosure",
    "record_outage": "recordOutage",
    "claim": "claimSlaCredit",
    "decide": "decideClaim",
    "events": "listEvents",
    "invoices": "listInvoices",  # a month, or the auditors' search (rule book 13)
    "deadlines": "listDeadlines",
    "healthz": "getHealth",
    "readyz": "getReadiness",
    "get_clock": "getClock",
    "set_clock": "setClock",
    "get_outage": "getOutage",
    "get_claim": "getClaim",
    "get_catalog": "getCatalog",
    "receive_transfer": "recordTransfer",
    "list_unapplied": "listUnappliedTransfers",
    "get_transfer": "getTransfer",
    "apply_transfer": "applyTransfer",
    "reverse_transfer": "reverseTransfer",
    "get_account": "getCustomerAccount",
    "apply_credit": "applyCreditBalance",
    "refund_credit": "refundCreditBalance",
    "write_off": "writeOffDebt",
    "move_stop_date": "moveSuspensionStopDate",
    "lift": "liftSuspension",
    "metrics": "getMetrics",
}

_STATUS_TEXT = {
    "401": "no or unknown API key",
    "403": "the key's role may not call this operation",
    "404": "no such resource",
    "409": "a command the current state does not allow (names the article), or a concurrent duplicate",
    "412": "If-Match names a stale version",
    "415": "the body is not application/json",
    "422": "malformed input, a value the rules refuse (names the field), or an Idempotency-Key reused "
           "with another body",
    "500": "unexpected error (an incident id, never a stack trace)",
    "503": "the database cannot be reached right now; retry after Retry-After seconds",
}

_HEADER = {
    "ETag": ("the contract's (or outage's, transfer's) version, quoted: send it back as If-Match", {"type": "string"}),
    "X-Position": ("notification position of the last stored event (read-your-writes)", {"type": "integer"}),
    "Location": ("the created resource", {"type": "string"}),
    "Retry-After": ("seconds to wait before retrying", {"type": "integer"}),
    "Idempotent-Replayed": ("true when this is the stored answer of an earlier request with the same "
                            "Idempotency-Key", {"type": "string"}),
}

_IF_MATCH_PATHS = re.compile(r"^/v1/(contracts/\{contract_id\}/[a-z/-]+|sla-claims/\{claim_id\}/decision)$")


def operation_id(route: APIRoute) -> str:
    """``getContract``: from ``OPERATION_IDS``, else the route function's name in camelCase."""
    if route.name in OPERATION_IDS:
        return OPERATION_IDS[route.name]
    head, *rest = route.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _headers(*names: str) -> dict[str, Any]:
    return {name: {"description": _HEADER[name][0], "schema": _HEADER[name][1]} for name in names}


def _problem(status: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "error"),
                                "content": {PROBLEM_MEDIA: {"schema": PROBLEM_REF}}}
    if status in ("503", "409"):
        response["headers"] = _headers("Retry-After")
    return response


def _complete(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    keyed = path.startswith("/v1/")
    has_body = "requestBody" in op
    statuses = {"500", "503"} | ({"401", "403"} if keyed else set())
    if has_body:
        statuses |= {"415", "422"}
    if op.get("parameters"):
        statuses.add("422")
    for status in sorted(statuses | {s for s in responses if s >= "400"}):
        description = responses.get(status, {}).get("description")
        responses[status] = _problem(status)
        if description and status not in _STATUS_TEXT:
            responses[status]["description"] = description
    parameters: list[dict[str, Any]] = op.setdefault("parameters", [])
    names = {p.get("name") for p in parameters}
    if method == "post" and "Idempotency-Key" not in names:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "description": "a retry with the same key and body replays the first answer "
                                          "(1-255 visible ASCII characters; a UUID is a good key)",
                           "schema": {"type": "string", "maxLength": 255}})
    if method == "post" and _IF_MATCH_PATHS.match(path) and "If-Match" not in names:
        parameters.append({"name": "If-Match", "in": "header", "required": False,
                           "description": 'the contract version the command expects, e.g. "3" (412 when stale)',
                           "schema": {"type": "string"}})
    if not parameters:
        del op["parameters"]
    for status, response in responses.items():
        if not status.startswith("2"):
            continue
        if method == "post":
            names_out = ["ETag", "X-Position", "Idempotent-Replayed"] + (["Location"] if status == "201" else [])
            response.setdefault("headers", {}).update(_headers(*names_out))
        elif path in ("/v1/contracts/{contract_id}", "/v1/outages/{outage_id}", "/v1/transfers/{transfer_id}"):
            response.setdefault("headers", {}).update(_headers("ETag"))


def complete_schema(schema: dict[str, Any]) -> dict[str, Any]:
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method in ("get", "post", "put", "delete", "patch"):
                _complete(path, method, op)
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    for name, examples in model_examples().items():
        if name in components:  # FastAPI drops nulls everywhere (exclude_none), also inside examples
            components[name]["examples"] = examples
    return schema


def model_examples() -> dict[str, list[Any]]:
    """The examples of the request and response models, by schema name, with their nulls."""
    found: dict[str, list[Any]] = {}
    for module in (resources, schemas):
        for name, model in vars(module).items():
            if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__ == module.__name__:
                extra = model.model_config.get("json_schema_extra")
                examples = extra.get("examples") if isinstance(extra, dict) else None
                if isinstance(examples, list):
                    found[name] = examples
    return found


def install_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Replace ``app.openapi`` by the completed document (built once, then cached like FastAPI's)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_schema(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
                tags=app.openapi_tags, servers=app.servers))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return openapi
