"""The API's own documentation pages, served from packaged assets (no CDN, so ``/docs`` works
offline): Swagger UI from the ``swagger-ui-bundle`` package, and ``GET /``, which leads a browser
to the ``/ui/`` pages and answers a client with the links to the API description."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS = "/docs"
REDOC = "/redoc"  # sent to /docs: no maintained package ships ReDoc's bundle without Django (decisions.md)
ASSETS = "/docs/assets"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def install_docs(app: FastAPI, *, ui: bool) -> set[str]:
    """Serve ``/docs`` and ``/`` and return the paths that need no API key."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS, include_in_schema=False)
    def swagger_ui() -> Response:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")

    @app.get(REDOC, include_in_schema=False)
    def redoc() -> Response:
        return RedirectResponse(DOCS, status_code=307)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if "text/html" in accept:
            return RedirectResponse("/ui/" if ui else DOCS, status_code=303)
        return JSONResponse({"object": "api", "title": app.title, "version": app.version,
                             "openapi": openapi_url, "docs": DOCS, "ui": "/ui/" if ui else None,
                             "health": "/healthz"})

    return {"/", DOCS, REDOC, *(f"{ASSETS}/{name}" for name in ASSET_FILES)}
