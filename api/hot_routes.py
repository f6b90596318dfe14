"""The hottest operations answered without FastAPI's per-request machinery (issue 21).

FastAPI spends more of a GET's server time on its request handling (dependency solving, the
validation of every parameter, exit stacks, telemetry hooks) than the service spends on the
contract. A ``HotRoute`` sits first in the app's routes and takes only the requests it can hand to
the declared route's own endpoint function exactly as FastAPI would: the declared method, the path
with canonical lowercase UUIDs as its parameters, no query string (every query parameter of such a
route has a default), and, for a route with a body, a JSON body that the route's own body field
validates. Anything else (another spelling of an id, a query, a body FastAPI refuses) goes on to
the declared route, so validation errors stay FastAPI's (``api.errors``).

The declared route stays the one the OpenAPI document, the auth middleware's role table and the
request metrics (``scope["route"]``) are taken from. Its endpoint runs in a worker thread, as FastAPI
runs a sync endpoint, with the request's context variables (request id, actor, span), and what it
raises reaches the app's exception handlers as it would there. The thread is one of this module's
pool (as many as anyio's default limit), handed the call by ``loop.run_in_executor``: half the CPU
of anyio's ``to_thread`` hop, a fifth of a GET's server time (issue 21).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette._utils import get_route_path  # what starlette.routing.Route.matches matches on
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from api.auth import SECURITY_SCHEMES, current_principal
from api.context import context

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_PARAM = re.compile(r"\{([a-z_]+)\}")
_DECLINED = "contracts.hot_route_declined"  # scope key: route this request through FastAPI
_GIVEN = {"ctx", "who", "request", "body"}  # what the endpoints take besides path and query parameters
_DEPENDENCIES = {context, current_principal, *SECURITY_SCHEMES}  # given directly, or documentation only
THREADS = 40  # anyio's default thread limit (what FastAPI's sync endpoints share)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


async def in_thread(fn: Callable[..., Any], **arguments: Any) -> Any:
    """``fn(**arguments)`` in a worker thread, in a copy of the caller's context."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="api-hot")
    call = functools.partial(contextvars.copy_context().run, fn, **arguments)
    return await asyncio.get_running_loop().run_in_executor(_pool, call)


class HotRoute(BaseRoute):
    def __init__(self, declared: APIRoute, method: str) -> None:
        dependant = declared.dependant
        assert not (dependant.header_params or dependant.cookie_params), "a hot route reads no header parameter"
        assert {d.call for d in dependant.dependencies} <= _DEPENDENCIES, "a hot route solves no dependency"
        parameters = inspect.signature(declared.endpoint).parameters
        for query in dependant.query_params:  # absent from the query string: the endpoint's own default
            assert not query.field_info.is_required() and parameters[query.name].default == query.get_default()
        path_names = {p.name for p in dependant.path_params}
        assert set(_PARAM.findall(declared.path)) == path_names
        assert set(parameters) <= {q.name for q in dependant.query_params} | path_names | _GIVEN
        self.method, self.declared, self.endpoint = method, declared, declared.endpoint
        self.path, self.path_format = declared.path, declared.path_format
        self.takes = set(parameters) & _GIVEN
        self.body_field = declared.body_field if "body" in self.takes else None
        self.regex = re.compile("".join(f"(?P<{part}>{_UUID})" if i % 2 else re.escape(part)
                                        for i, part in enumerate(_PARAM.split(declared.path))))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (scope["type"] != "http" or scope["method"] != self.method or scope.get("query_string")
                or _DECLINED in scope or scope["app"].dependency_overrides):  # overrides: FastAPI solves them
            return Match.NONE, {}
        found = self.regex.fullmatch(get_route_path(scope))
        if found is None:
            return Match.NONE, {}
        return Match.FULL, {"route": self.declared, "endpoint": self.endpoint, "path_params": found.groupdict()}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        arguments: dict[str, Any] = {name: uuid.UUID(value) for name, value in scope["path_params"].items()}
        given = {"ctx": scope["app"].state.ctx,
                 "who": scope["state"]["principal"]}  # set by api.auth.Authenticator, before routing
        if "request" in self.takes:
            given["request"] = Request(scope, receive)
        if self.body_field is not None:
            messages = await _messages(receive)
            body = self._validated(scope, messages)
            if body is None:  # FastAPI's route answers, with its own refusal, from the same messages
                scope[_DECLINED] = True
                await scope["router"](scope, _replay(messages, receive), send)
                return
            given["body"] = body
        arguments.update((name, value) for name, value in given.items() if name in self.takes)
        response = await in_thread(self.endpoint, **arguments)
        await response(scope, receive, send)

    def _validated(self, scope: Scope, messages: list[Message]) -> Any:
        """The body as the declared route's body field validates it, or None: not all received, not
        sent as ``application/json``, not JSON orjson reads, or refused by the field."""
        assert self.body_field is not None
        if messages[-1]["type"] != "http.request":
            return None
        raw = b"".join(m.get("body", b"") for m in messages)
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if content_type.split(b";", 1)[0].strip().lower() != b"application/json" or not raw:
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        body, errors = self.body_field.validate(value, {}, loc=("body",))
        return None if errors else body


async def _messages(receive: Receive) -> list[Message]:
    """The request's messages up to its last body part (or a disconnect)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` handing out the messages already read first."""
    pending = messages[::-1]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()
    return replayed


def install_hot_routes(app: Any, routes: Iterable[BaseRoute], hot: set[tuple[str, str]]) -> None:
    """Put a ``HotRoute`` first for each declared route in ``hot`` ((method, path) pairs)."""
    made = [HotRoute(route, method) for route in routes if isinstance(route, APIRoute)
            for method in sorted(route.methods or ()) if (method, route.path) in hot]
    assert len(made) == len(hot), "a hot route names no declared route"
    app.router.routes[0:0] = made
