"""``contracts serve --port N [--host 127.0.0.1] [--workers N]``: the HTTP API under uvicorn.

The composition root of the API process: settings (``CONTRACTS_*``) -> services, API store
(keys, idempotency keys, sandbox clock: same database as the events), clock (the database
clock in sandbox mode, the system clock in production), read models, background workers,
then the FastAPI app.

``--workers N`` (N > 1) runs N API processes on one port (uvicorn's supervisor; each worker
builds its own parts with ``worker_app``, an app factory). Only on PostgreSQL, with the
projection runner as its own process (``contracts projections run``) and without the ``/ui/``
pages (``--no-ui``), because:

- on the embedded SQLite store the projection runner runs inside the API process and SQLite has
  one writer at a time: several processes would run several runners and queue on the file lock;
- the ``/ui/`` login sessions live in the memory of the process that created them
  (``api.ui.sessions``): a browser would be sent back to the login page whenever a request
  reached another worker. Serve the pages from a separate single-worker ``contracts serve``.

Everything else is shared through the database already: API keys (each process caches valid
ones for ``CONTRACTS_API_KEY_CACHE_SECONDS``), idempotency keys, the sandbox clock; every worker
runs a deadline scheduler and the PostgreSQL advisory lock lets one of them sweep
(``--no-scheduler``: none in these processes; run ``contracts scheduler``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from application.clock import Clock, SystemClock
from infrastructure.api_store import ApiStore, build_api_store
from infrastructure.clock_store import DatabaseClock
from infrastructure.composition import Services, build_services, persistence_env
from infrastructure.settings import Settings

log = logging.getLogger("contracts.serve")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve the HTTP API (OpenAPI docs at /docs)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    p.add_argument("--with-projections", action="store_true",
                   help="run the projection runner in this process also on PostgreSQL (default: only on "
                        "SQLite; with PostgreSQL run `contracts projections run` as its own process)")
    p.add_argument("--workers", type=int, default=1,
                   help="API processes on the port (default 1; more needs PostgreSQL, --no-ui and the projection "
                        "runner as its own process)")
    p.add_argument("--no-scheduler", action="store_true",
                   help="run no deadline scheduler in the API process(es) (run `contracts scheduler` instead)")
    p.add_argument("--no-ui", action="store_true", help="do not serve the read-only web pages under /ui/")
    p.set_defaults(func=_run)


def build_clock(settings: Settings, store: ApiStore) -> Clock:
    """Sandbox: the shared, settable database clock. Production: the system clock."""
    return DatabaseClock(store) if settings.mode == "sandbox" else SystemClock()


def build_read_side(services: Services, clock: Clock, in_process: bool | None = None) -> Any:
    """The read models; their late interest is computed as of the service clock's date."""
    from infrastructure.read_side import build_read_models

    return build_read_models(services, clock=clock, in_process=in_process)


def start_background_workers(services: Services, read_models: Any, clock: Clock, *,
                             scheduler: bool = True) -> Callable[[], None]:
    """Start what runs beside the API in this process; returns a function that stops it all.

    - the projection runner of the read models when they run in process (the embedded SQLite
      default; the runner polls the notification log);
    - the deadline scheduler (``infrastructure.scheduler``): every API process runs one and
      leader election lets exactly one of them sweep at a time. In sandbox mode moving the
      service clock (``clock.set``) also triggers a sweep at once, so a client sees deadlines fire.
      ``scheduler=False``: none (``contracts scheduler`` runs as its own process).
    """
    from infrastructure.scheduler import build_scheduler

    stops: list[Callable[[], None]] = []
    start = getattr(read_models, "start", None)
    if start is not None:
        start()
        stops.append(getattr(read_models, "stop", lambda: None))
    if scheduler:
        deadlines = build_scheduler(services, read_models, clock)
        deadlines.start()
        stops.append(deadlines.shutdown)
        setter = getattr(clock, "set", None)
        if callable(setter) and services.settings.mode == "sandbox":
            def set_and_sweep(to: Any) -> Any:
                result = setter(to)
                deadlines.trigger()
                return result

            clock.set = set_and_sweep  # type: ignore[attr-defined]

    def stop_all() -> None:
        for stop in reversed(stops):
            try:
                stop()
            except Exception:  # keep stopping the others
                log.exception("stopping a background worker failed")
    return stop_all


_WORKER_OPTIONS = "_CONTRACTS_SERVE_OPTIONS"  # serve's options, for the worker processes (not a setting)


def build_served_app(settings: Settings, *, with_projections: bool = False, scheduler: bool = True,
                     ui: bool = True) -> tuple[Any, Callable[[], None]]:
    """The app of one API process and the function that stops its workers and closes its parts."""
    from api.app import create_app

    services = build_services(settings)
    store = build_api_store(persistence_env(settings))
    store.setup()
    clock = build_clock(settings, store)
    read_models = build_read_side(services, clock, True if with_projections else None)
    stop_workers = start_background_workers(services, read_models, clock, scheduler=scheduler)
    app = create_app(services, read_models, clock, store, mode=settings.mode, ui=ui)

    def close() -> None:
        stop_workers()
        store.close()
        services.close()
    return app, close


def worker_app() -> Any:
    """App factory of a ``--workers N`` process (``uvicorn --factory``): its own parts, closed
    when uvicorn shuts the worker down (lifespan)."""
    options = json.loads(os.environ.get(_WORKER_OPTIONS) or "{}")
    settings = Settings()
    logging.getLogger().setLevel(settings.log_level)
    app, close = build_served_app(settings, with_projections=False, scheduler=bool(options.get("scheduler", True)),
                                  ui=False)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        try:
            async with inner(target) as state:
                yield state
        finally:
            close()

    app.router.lifespan_context = lifespan
    return app


def workers_refusal(workers: int, settings: Settings, *, with_projections: bool, ui: bool) -> str | None:
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
    if ui:
        return ("--workers > 1 needs --no-ui: the /ui/ login sessions live in the memory of one process, so a "
                "browser would be logged out whenever a request reached another worker; serve the pages from a "
                "separate single-worker `contracts serve`")
    return None


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings()
    logging.getLogger().setLevel(settings.log_level)
    refusal = workers_refusal(args.workers, settings, with_projections=args.with_projections, ui=not args.no_ui)
    if refusal is not None:
        log.error("%s", refusal)
        return 2
    if args.workers > 1:
        os.environ[_WORKER_OPTIONS] = json.dumps({"scheduler": not args.no_scheduler})
        log.info("serving %s mode on http://%s:%d with %d worker processes (events in %s)", settings.mode,
                 args.host, args.port, args.workers, settings.database_label())
        uvicorn.run("infrastructure.cli_serve:worker_app", factory=True, workers=args.workers, host=args.host,
                    port=args.port, log_level=settings.log_level.lower(), server_header=False,
                    http="infrastructure.cli_serve:NoDelayH11Protocol")
        return 0
    app, close = build_served_app(settings, with_projections=args.with_projections,
                                  scheduler=not args.no_scheduler, ui=not args.no_ui)
    log.info("serving %s mode on http://%s:%d (events in %s)", settings.mode, args.host, args.port,
             settings.database_label())
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(),
                    server_header=False)
    finally:
        close()
    return 0


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with ``TCP_NODELAY`` on every connection.

    asyncio sets it only on sockets whose ``proto`` is TCP; the listening socket uvicorn's
    ``--workers`` supervisor hands to its processes comes back with ``proto`` 0, so the workers'
    connections kept Nagle's algorithm and a keep-alive client waited for the delayed ACK: ~40 ms
    per response (measured: a bare FastAPI app fell from ~1,000 to ~350 req/s with 2 workers)."""

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # not a TCP socket after all
                pass
        super().connection_made(transport)
