"""API keys and roles.

A key is sent as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``. Keys are random
tokens (``ck_`` + 32 random bytes, 256 bits) shown once at creation; the store keeps only
their SHA-256 (table ``api_keys``). A slow password hash (bcrypt, argon2) exists to make
guessing *low-entropy human passwords* from a stolen hash expensive; a 256-bit random key
cannot be guessed whatever the hash speed, so a fast hash loses nothing and keeps the lookup
a single indexed equality query on every request.

Roles:
- ``billing``: every business command and every read, except the operator-only ones;
- ``auditor``: reads only; sees no personal data (contractor information is redacted);
- ``operator``: everything, including SLA decisions, termination for cause, running month
  starts (``/advance``) and the disclosure export.

Authentication and the role check run in an ASGI middleware *before* the request body is read,
so an unauthenticated or unauthorised caller learns nothing about the request schema (401/403
before any 422). Each route declares its roles with ``**roles(...)``; a route without roles is
refused to everybody (default deny), and the test suite checks every route of the app.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import DATABASE_UNAVAILABLE, problem_body, problem_response, unavailable_response
from infrastructure.api_store import ApiStore

BILLING, AUDITOR, OPERATOR = "billing", "auditor", "operator"
ROLES = (BILLING, AUDITOR, OPERATOR)
READERS = (BILLING, AUDITOR, OPERATOR)
WRITERS = (BILLING, OPERATOR)
OPERATORS = (OPERATOR,)
KEY_PREFIX = "ck_"
_MAX_KEY_LENGTH = 200

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    @property
    def sees_personal_data(self) -> bool:
        return self.role in (BILLING, OPERATOR)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(store: ApiStore, role: str, name: str, now: datetime) -> str:
    """Store a new key's hash and return the key itself (the only time it is visible)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name or len(name) > 100:
        raise ValueError("name is required (at most 100 characters)")
    key = generate_key()
    store.insert_key(hash_key(key), role, name, now)
    return key


def roles(*allowed: str) -> dict[str, Any]:
    """Keyword arguments for a route decorator: who may call it (also shown in the OpenAPI docs)."""
    assert allowed and all(r in ROLES for r in allowed)
    return {
        "openapi_extra": {"x-roles": list(allowed)},
        "dependencies": [Security(_api_key_header), Security(_bearer)],
    }


def route_roles(route: Any) -> tuple[str, ...] | None:
    extra = getattr(route, "openapi_extra", None) or {}
    allowed = extra.get("x-roles")
    return tuple(allowed) if allowed else None


def current_principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def presented_key(headers: Headers) -> str | None:
    key = headers.get("x-api-key")
    if not key:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    if not key or len(key) > _MAX_KEY_LENGTH:
        return None
    return key


class AuthMiddleware:
    """401 without a valid key, 403 when the key's role may not call the matched route.

    ``routes`` are the API's routes (with their final paths); the middleware matches them
    itself, as the router would, because it runs before routing."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute], store: ApiStore, public_paths: set[str]) -> None:
        self.app, self.store, self.public_paths = app, store, public_paths
        self.table = [(route.path_regex, getattr(route, "methods", None) or set(), route_roles(route))
                      for route in routes if hasattr(route, "path_regex")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        key = presented_key(Headers(scope=scope))
        try:
            record = await run_in_threadpool(self.store.find_key, hash_key(key)) if key else None
        except DATABASE_UNAVAILABLE as exc:  # 503, not a 500 with a stack trace in the log
            await unavailable_response(scope["method"], path, exc)(scope, receive, send)
            return
        if record is None:
            detail = "an API key is required" if key is None else "the API key is not valid (unknown or revoked)"
            body = problem_body(401, "unauthenticated", detail, instance=path)
            await problem_response(401, body, {"WWW-Authenticate": 'Bearer realm="contracts"'})(scope, receive, send)
            return
        principal = Principal(record.name, record.role)
        scope.setdefault("state", {})["principal"] = principal
        method = scope["method"]
        for path_regex, methods, allowed in self.table:
            if method in methods and path_regex.match(path):
                if allowed is None or principal.role not in allowed:
                    detail = (f"role {principal.role} may not call this operation"
                              + (f" (allowed: {', '.join(allowed)})" if allowed else ""))
                    body = problem_body(403, "forbidden", detail, instance=path)
                    await problem_response(403, body)(scope, receive, send)
                    return
                break
        await self.app(scope, receive, send)
