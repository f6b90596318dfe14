"""Read-only web pages for auditors and operators under ``/ui/`` (issue 9).

``ui_app(app)`` is the pages' own ASGI app (``api.ui.pages``), with its session-cookie login:
the request middleware (``api.observability``) sends requests under ``/ui`` to it, after the
request id and the body limit and instead of the API's header-key check. The pages use the
same keys, roles and services as the API (``app.state.ctx``).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from api.ui.pages import PREFIX, build_ui_app

UI_PREFIX = PREFIX


def ui_app(app: FastAPI) -> ASGIApp:
    """The pages' ASGI app over ``app``'s services (``app.state.ctx``), which
    ``api.observability.RequestMiddleware`` serves ``/ui`` and ``/ui/...`` from."""
    ui: ASGIApp = build_ui_app(app.state.ctx)
    return ui


__all__ = ["UI_PREFIX", "ui_app"]
