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

Valid keys are cached per process (``KeyCache``, setting ``CONTRACTS_API_KEY_CACHE_SECONDS``,
default 5 s): a request with a cached key costs no database round trip and no thread hop. Only
keys the store found valid are cached, at most ``max_entries`` (least recently used out), so
unknown keys, however many an attacker sends, neither fill memory nor skip the lookup. A key
revoked through this process's store is dropped from the cache at once (``ApiStore.on_revoke``);
one revoked by another process (``contracts keys revoke``) is refused at the latest when its
entry expires, ``ttl`` seconds after it was looked up.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from api.errors import problem_body, problem_response, unavailable, unavailable_response
from application.api_keys import AUDITOR, BILLING, OPERATOR, OPERATORS, READERS, ROLES, WRITERS, hash_key
from application.ports import ApiKeyRecord, ApiStore

_MAX_KEY_LENGTH = 200

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
SECURITY_SCHEMES = (_api_key_header, _bearer)
"""In the OpenAPI document only: ``Authenticator`` reads the key (neither refuses: ``auto_error=False``)."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    @property
    def sees_personal_data(self) -> bool:
        return self.role in (BILLING, OPERATOR)


def roles(*allowed: str) -> dict[str, Any]:
    """Keyword arguments for a route decorator: who may call it (also shown in the OpenAPI docs)."""
    assert allowed and all(r in ROLES for r in allowed)
    return {
        "openapi_extra": {"x-roles": list(allowed)},
        "dependencies": [Security(scheme) for scheme in SECURITY_SCHEMES],
    }


def route_roles(route: Any) -> tuple[str, ...] | None:
    extra = getattr(route, "openapi_extra", None) or {}
    allowed = extra.get("x-roles")
    return tuple(allowed) if allowed else None


async def current_principal(request: Request) -> Principal:
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


class KeyCache:
    """Valid API keys by hash, each trusted for ``ttl`` seconds after its lookup; bounded (LRU).

    Thread-safe (the event loop reads it, the threadpool may revoke). ``ttl`` 0 disables it."""

    def __init__(self, ttl: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._entries: OrderedDict[str, tuple[float, ApiKeyRecord]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every revocation: a lookup that raced one is not cached

    def get(self, key_hash: str) -> ApiKeyRecord | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is None:
                return None
            if self.clock() >= entry[0]:
                del self._entries[key_hash]
                return None
            self._entries.move_to_end(key_hash)
            return entry[1]

    def put(self, key_hash: str, record: ApiKeyRecord, generation: int | None = None) -> None:
        """Cache ``record``; ``generation``: the value of ``self.generation`` before the lookup
        (a revocation since then may have come after the lookup read the key as valid)."""
        if self.ttl <= 0 or record.revoked_at is not None:
            return
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            self._entries[key_hash] = (self.clock() + self.ttl, record)
            self._entries.move_to_end(key_hash)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop_name(self, name: str) -> None:
        """Forget every entry of the key named ``name`` (it was just revoked)."""
        with self._lock:
            self.generation += 1
            for key_hash in [h for h, (_, record) in self._entries.items() if record.name == name]:
                del self._entries[key_hash]

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class Authenticator:
    """401 without a valid key, 403 when the key's role may not call the matched route; run by
    ``api.observability.RequestMiddleware`` before routing (so before any body is read).

    ``routes`` are the API's routes (with their final paths); it matches them itself, as the
    router would, because it runs before routing."""

    def __init__(self, *, routes: Sequence[BaseRoute], store: ApiStore, public_paths: set[str],
                 cache: KeyCache | None = None) -> None:
        self.store, self.public_paths = store, public_paths
        self.cache = cache if cache is not None else KeyCache(0)
        self.table = [(route.path_regex, getattr(route, "methods", None) or set(), route_roles(route))
                      for route in routes if hasattr(route, "path_regex")]

    async def admit(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """True: ``scope["state"]["principal"]`` is set (or the path is public); False: refused
        (401, 403, or 503 when the key store cannot be reached), the answer sent."""
        path = scope["path"]
        if path in self.public_paths:
            return True
        key = presented_key(Headers(scope=scope))
        record = None
        if key:
            key_hash = hash_key(key)
            record = self.cache.get(key_hash)
            if record is None:
                generation = self.cache.generation
                try:
                    record = await run_in_threadpool(self.store.find_key, key_hash)
                except Exception as exc:  # 503, not a 500 with a stack trace in the log
                    if not unavailable(exc):
                        raise
                    await unavailable_response(scope["method"], path, exc)(scope, receive, send)
                    return False
                if record is not None:
                    self.cache.put(key_hash, record, generation)
        if record is None:
            detail = "an API key is required" if key is None else "the API key is not valid (unknown or revoked)"
            body = problem_body(401, "unauthenticated", detail, instance=path)
            await problem_response(401, body, {"WWW-Authenticate": 'Bearer realm="contracts"'})(scope, receive, send)
            return False
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
                    return False
                break
        return True


__all__ = ["AUDITOR", "BILLING", "OPERATOR", "OPERATORS", "READERS", "ROLES", "SECURITY_SCHEMES", "WRITERS",
           "Authenticator", "KeyCache", "Principal", "current_principal", "hash_key", "presented_key", "roles",
           "route_roles"]
