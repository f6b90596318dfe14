"""The API's own documentation pages, served from packaged assets (no CDN, so they work offline):
Swagger UI at ``/docs`` from the ``swagger-ui-bundle`` package, ReDoc at ``/redoc`` from the
``redoc.standalone.js`` that the ``fastapi-offline`` package ships (only its static file is used,
never its code; without the package ``/redoc`` leads to ``/docs``), and ``GET /``, which leads a
browser to the ``/ui/`` pages and answers a client with the links to the API description."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS = "/docs"
REDOC = "/redoc"
ASSETS = "/docs/assets"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
REDOC_ASSETS = "/redoc/assets"
REDOC_FILES = ("redoc.standalone.js", "favicon.png")


def redoc_assets() -> Path | None:
    """The folder of ReDoc's standalone bundle in the installed ``fastapi-offline`` package (found,
    not imported), or None when it is not installed."""
    spec = importlib.util.find_spec("fastapi_offline")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        folder = Path(location) / "static"
        if all((folder / name).is_file() for name in REDOC_FILES):
            return folder
    return None


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

    redoc_folder = redoc_assets()
    if redoc_folder is not None:
        app.mount(REDOC_ASSETS, StaticFiles(directory=str(redoc_folder)), name="redoc-assets")

    @app.get(REDOC, include_in_schema=False)
    def redoc() -> Response:
        if redoc_folder is None:
            return RedirectResponse(DOCS, status_code=307)
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{REDOC_ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{REDOC_ASSETS}/favicon.png", with_google_fonts=False)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if "text/html" in accept:
            return RedirectResponse("/ui/" if ui else DOCS, status_code=303)
        return JSONResponse({"object": "api", "title": app.title, "version": app.version,
                             "openapi": openapi_url, "docs": DOCS, "ui": "/ui/" if ui else None,
                             "health": "/healthz"})

    return {"/", DOCS, REDOC, *(f"{ASSETS}/{name}" for name in ASSET_FILES),
            *(f"{REDOC_ASSETS}/{name}" for name in REDOC_FILES)}
