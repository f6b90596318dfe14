"""Read-only web pages for auditors and operators under ``/ui/`` (issue 9).

``install_ui(app)`` puts them in front of the API: requests under ``/ui`` go to the pages'
own ASGI app (``api.ui.pages``) with its session-cookie login, everything else to the API and
its header-key middleware unchanged. The pages use the same keys, roles and services as the
API (``app.state.ctx``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.ui.pages import PREFIX, build_ui_app


class UiDispatch:
    """ASGI middleware: ``/ui`` and ``/ui/...`` to the pages, the rest to the API."""

    def __init__(self, app: ASGIApp, *, ui: ASGIApp) -> None:
        self.app, self.ui = app, ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await self.ui(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install_ui(app: FastAPI) -> None:
    """Serve the pages from ``app`` (call after the API's own middleware has been added)."""
    ui: Any = build_ui_app(app.state.ctx)
    app.add_middleware(UiDispatch, ui=ui)


__all__ = ["install_ui", "UiDispatch"]
