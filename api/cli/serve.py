"""``contracts serve --port N [--host 127.0.0.1] [--workers N]``: the HTTP API under uvicorn.

The API process: ``infrastructure.bootstrap`` builds its parts from the settings (services,
API store with keys, idempotency keys and the sandbox clock in the same database as the events,
the clock, read models, background workers); this module hands them to the FastAPI app.

``--workers N`` (N > 1) runs N API processes on one port (uvicorn's supervisor; each worker
builds its own parts with ``worker_app``, an app factory). Only on PostgreSQL, with the
projection runner as its own process (``contracts projections run``), because on the embedded
SQLite store the projection runner runs inside the API process and SQLite has one writer at a
time: several processes would run several runners and queue on the file lock.

Everything else is shared through the database: API keys (each process caches valid ones for
``CONTRACTS_API_KEY_CACHE_SECONDS``), idempotency keys, the sandbox clock, the ``/ui/`` login
sessions (``api.ui.sessions``: any worker honours a session another made); every worker
runs a deadline scheduler and the PostgreSQL advisory lock lets one of them sweep
(``--no-scheduler``: none in these processes; run ``contracts scheduler``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from api.http_protocol import PROTOCOL
from api.http_protocol import configure as configure_protocol
from infrastructure.bootstrap import bootstrap, start_background_workers
from infrastructure.log_safety import configure as configure_logging
from infrastructure.metrics import mark_dead, prepare_multiprocess
from infrastructure.settings import Settings, SettingsError, load_settings
from infrastructure.tracing import shutdown as shutdown_tracing
from infrastructure.tracing import tracer_for

log = logging.getLogger("contracts.serve")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve the HTTP API (OpenAPI docs at /docs)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    p.add_argument("--with-projections", action="store_true",
                   help="run the projection runner in this process also on PostgreSQL (default: only on "
                        "SQLite; with PostgreSQL run `contracts projections run` as its own process)")
    p.add_argument("--workers", type=int, default=1,
                   help="API processes on the port (default 1; more needs PostgreSQL and the projection runner as "
                        "its own process; the /ui/ sessions are shared through the database)")
    p.add_argument("--no-scheduler", action="store_true",
                   help="run no deadline scheduler in the API process(es) (run `contracts scheduler` instead)")
    p.add_argument("--no-ui", action="store_true", help="do not serve the read-only web pages under /ui/")
    p.add_argument("--with-webhooks", action="store_true",
                   help="run the webhook worker in this process also on PostgreSQL (default: only on SQLite; with "
                        "PostgreSQL run `contracts webhooks run` as its own process)")
    p.set_defaults(func=_run)


LOOP = "auto"  # uvloop where it is installed (a dependency; uvicorn falls back to asyncio's loop)
_WORKER_OPTIONS = "_CONTRACTS_SERVE_OPTIONS"  # serve's options, for the worker processes (not a setting)


def build_served_app(settings: Settings, *, with_projections: bool = False, scheduler: bool = True,
                     ui: bool = True, with_webhooks: bool = False) -> tuple[Any, Callable[[], None]]:
    """The app of one API process and the function that stops its workers and closes its parts."""
    from api.app import create_app
    from infrastructure.bootstrap import build_webhooks

    process = bootstrap(settings, api_store=True, in_process=True if with_projections else None)
    assert process.store is not None
    stop_workers = start_background_workers(process.services, process.read_models, process.clock,
                                            scheduler=scheduler)
    hooks = build_webhooks(process.services, in_process=True if with_webhooks else None)
    hooks.start()  # the delivery worker, in this process on SQLite (spec 12, docs/webhooks.md)
    app = create_app(process.services, process.read_models, process.clock, process.store, mode=settings.mode,
                     ui=ui, webhooks=hooks.webhooks, webhook_worker=hooks.worker if hooks.in_process else None)

    def close() -> None:
        hooks.stop()
        stop_workers()
        process.close()
    return app, close


def worker_app() -> Any:
    """App factory of a ``--workers N`` process (``uvicorn --factory``): its own parts, closed
    when uvicorn shuts the worker down (lifespan)."""
    options = json.loads(os.environ.get(_WORKER_OPTIONS) or "{}")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_repeat_limit, settings.log_repeat_window_seconds,
                      settings.log_format)
    configure_protocol(settings)
    app, close = build_served_app(settings, with_projections=False, scheduler=bool(options.get("scheduler", True)),
                                  ui=bool(options.get("ui", True)))
    app.state.ctx.app.verify_cached = True  # the other workers command the same contracts
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        try:
            async with inner(target) as state:
                yield state
        finally:
            close()
            mark_dead()  # this worker's live gauges leave the added-up metrics
            shutdown_tracing()  # the spans still batched are sent

    app.router.lifespan_context = lifespan
    return app


def workers_refusal(workers: int, settings: Settings, *, with_projections: bool) -> str | None:
    """Why ``--workers`` cannot be used with these options (None: it can)."""
    if workers < 1:
        return "--workers must be at least 1"
    if workers == 1:
        return None
    if not settings.database_url:
        return ("--workers > 1 needs PostgreSQL (CONTRACTS_DATABASE_URL): on the embedded SQLite store the "
                "projection runner runs inside the API process and SQLite has a single writer")
    if with_projections:
        return ("--workers > 1 cannot run the projection runner in the API processes (--with-projections): run "
                "`contracts projections run` as its own process")
    return None


NO_KEY_REFUSAL = ("refusing to serve in production mode: the store holds no active API key, so every request "
                  "would be refused. Make one first:\n"
                  "  contracts keys create --role operator --name ops-admin\n"
                  "(it is printed once; roles: billing, auditor, operator), or try the sandbox: contracts start")
NO_MASTER_KEY_WARNING = ("WARNING: CONTRACTS_MASTER_KEY is not set: the per-contract data keys that protect personal "
                         "data are stored unwrapped next to the events, so whoever reads the database reads the "
                         "personal data. Set CONTRACTS_MASTER_KEY (base64 of 32 random bytes, kept outside the "
                         "database) before serving real data; see docs/auditing.md.")


def production_checks(settings: Settings) -> str | None:
    """Production mode: warn loudly without a master key (stderr); the refusal when no active
    API key is stored (None: serve). Sandbox mode: nothing."""
    if settings.mode != "production":
        return None
    if settings.master_key_text() is None:
        print(NO_MASTER_KEY_WARNING, file=sys.stderr, flush=True)
    from infrastructure.bootstrap import build_api_store, persistence_env

    store = build_api_store(persistence_env(settings))
    try:
        store.setup()
        active = [k for k in store.list_keys() if k.revoked_at is None]
    finally:
        store.close()
    return None if active else NO_KEY_REFUSAL


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How every API process runs uvicorn: the guarded protocol on httptools (request read timeout,
    connection cap, header size bound, TCP_NODELAY), uvloop's event loop, keep-alive and
    concurrency bounds from the settings, and no logging configuration of uvicorn's own (its
    loggers propagate to the process's escaped, rate-limited handler: ``infrastructure.log_safety``);
    uvicorn's access log off (``api.observability`` writes one line per request without the raw
    path or the client's address)."""
    configure_protocol(settings)
    return {"http": PROTOCOL, "loop": LOOP, "log_config": None, "log_level": settings.log_level.lower(),
            "server_header": False,
            "access_log": False,  # it writes the raw path and the client's address: api.observability writes ours
            "timeout_keep_alive": settings.http_keep_alive_seconds,
            "limit_concurrency": settings.http_max_connections, "h11_max_incomplete_event_size": 16 * 1024}


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    settings: Settings = args.settings
    refusal = workers_refusal(args.workers, settings, with_projections=args.with_projections)
    if refusal is not None:
        log.error("%s", refusal)
        return 2
    refusal = production_checks(settings)
    if refusal is not None:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    try:  # CONTRACTS_TRACING without the packages: one line, before anything starts
        tracer_for(settings.tracing, settings.tracing_service_name)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1:
        os.environ[_WORKER_OPTIONS] = json.dumps({"scheduler": not args.no_scheduler, "ui": not args.no_ui})
        cleanup = prepare_multiprocess()  # every worker's metrics in one folder, added up by /metrics
        log.info("serving %s mode on http://%s:%d with %d worker processes (events in %s)", settings.mode,
                 args.host, args.port, args.workers, settings.database_label())
        try:
            uvicorn.run("api.cli.serve:worker_app", factory=True, workers=args.workers, host=args.host,
                        port=args.port, **uvicorn_options(settings))
        finally:
            cleanup()
        return 0
    app, close = build_served_app(settings, with_projections=args.with_projections,
                                  scheduler=not args.no_scheduler, ui=not args.no_ui,
                                  with_webhooks=args.with_webhooks)
    log.info("serving %s mode on http://%s:%d (events in %s)", settings.mode, args.host, args.port,
             settings.database_label())
    try:
        uvicorn.run(app, host=args.host, port=args.port, **uvicorn_options(settings))
    finally:
        close()
        shutdown_tracing()
    return 0
