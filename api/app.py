"""``create_app``: the FastAPI application over already-built services (no side effects at import).

The composition root (``infrastructure.bootstrap``, called by ``api.cli.serve`` or a test) builds the services, read
models, clock and API store and passes them in.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from api.api_docs import install_docs
from api.auth import Authenticator, KeyCache
from api.body_limit import DEFAULT_LIMIT
from api.context import ApiContext
from api.errors import install_error_handlers
from api.hot_routes import install_hot_routes
from api.observability import METRICS_PATH, RequestMiddleware, metrics_router
from api.openapi import install_openapi, operation_id
from api.routes import announcements, contracts, feeds, invoices, sla, system, transfers
from api.routes import webhooks as webhook_routes
from api.ui import UI_PREFIX, ui_app
from application.clock import Clock
from application.ports import ApiReadModels, ApiStore
from infrastructure.bootstrap import Services
from infrastructure.metrics import store_collector, store_registry
from infrastructure.tracing import tracer_for

DESCRIPTION = """
Contract lifecycle service: billing systems drive contracts and read invoices; auditors read history.

* **Auth**: `X-API-Key: <key>` or `Authorization: Bearer <key>`; roles `billing` (commands and reads),
  `auditor` (reads, no personal data), `operator` (everything). Each operation lists its roles in `x-roles`.
* **Idempotency-Key** on any POST: a retry with the same key and body replays the first response.
* **Concurrency**: `ETag` is the contract version; send `If-Match` on commands (412 when stale).
* **Errors**: RFC 9457 `application/problem+json` with the article of the refused rule.
* Money is integer yen; dates `YYYY-MM-DD`; instants ISO 8601 with offset; months `YYYY-MM`.
"""

NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
"""FastAPI's own OpenTelemetry spans, metrics and logs are off: under a global provider its spans
carried the client's path and query (``url.path``, ``url.query``) and it looked the providers up on
every request (~4 % of a GET's server time, issue 21). The service's own (``api.observability``,
issue 20) write the route template and never client text."""

HOT_ROUTES = {("GET", "/v1/contracts/{contract_id}"), ("POST", "/v1/contracts/{contract_id}/contractor")}
"""Answered past FastAPI's request machinery (``api.hot_routes``, issue 21: the bench's GET and POST)."""


def create_app(services: Services, read_models: ApiReadModels, clock: Clock, store: ApiStore, *,
               mode: str | None = None, wait_timeout: float = 5.0,
               idempotency_retention: timedelta = timedelta(hours=24), ui: bool = True,
               key_cache: KeyCache | None = None, webhooks: Any = None, webhook_worker: Any = None) -> FastAPI:
    """``ui``: serve the read-only pages under ``/ui/`` (their login sessions are rows of ``store``).
    ``key_cache``: valid API keys cached by the auth middleware (default: a ``KeyCache``
    with ``settings.api_key_cache_seconds``); revocations through ``store`` empty it at once."""
    app = FastAPI(title="Contract lifecycle API", version="1", description=DESCRIPTION,
                  generate_unique_id_function=operation_id, docs_url=None,
                  redoc_url=None,  # FastAPI's /redoc loads ReDoc from a CDN: api_docs.REDOC instead
                  telemetry=NO_FASTAPI_TELEMETRY)
    if key_cache is None:
        settings = getattr(services, "settings", None)  # None: an app built for its routes only
        key_cache = KeyCache(float(getattr(settings, "api_key_cache_seconds", 0.0)))
    if store is not None:
        store.on_revoke(key_cache.drop_name)
    app.state.ctx = ApiContext(services=services, read_models=read_models, clock=clock, store=store,
                               mode=mode or services.settings.mode, wait_timeout=wait_timeout,
                               idempotency_retention=idempotency_retention, key_cache=key_cache,
                               webhooks=webhooks, webhook_worker=webhook_worker)
    install_error_handlers(app)
    install_openapi(app)
    routers = [module.router for module in (system, contracts, sla, feeds, invoices, transfers, announcements,
                                            webhook_routes)]
    settings = getattr(services, "settings", None)
    if bool(getattr(settings, "metrics_enabled", True)):  # Prometheus /metrics (api.observability)
        routers.append(metrics_router)
        if services is not None:  # None: an app built for its routes only
            app.state.metrics_registries = (store_registry(store_collector(services.app, read_models, webhooks)),)
    for router in routers:
        app.include_router(router)
    install_hot_routes(app, [r for router in routers for r in router.routes], HOT_ROUTES)
    docs = install_docs(app, ui=ui)  # /docs from packaged assets, GET /
    public = {"/healthz", "/readyz", app.openapi_url or "", app.redoc_url or "",
              app.swagger_ui_oauth2_redirect_url or "", *docs} - {""}
    if bool(getattr(settings, "metrics_public", False)):
        public.add(METRICS_PATH)
    auth = Authenticator(routes=[r for router in routers for r in router.routes], store=store, public_paths=public,
                         cache=key_cache)
    # one layer, outermost: the request id, one log line and one metric sample per request; nothing reads
    # an oversized body; /ui to the pages (their own cookie login); the API key and the role before routing
    app.add_middleware(RequestMiddleware, access_log=bool(getattr(settings, "log_requests", True)),
                       tracer=tracer_for(getattr(settings, "tracing", "off"), getattr(settings, "tracing_service_name",
                                                                                     "contracts")),
                       body_limit=DEFAULT_LIMIT, ui=ui_app(app) if ui else None, ui_prefix=UI_PREFIX, auth=auth)
    return app
