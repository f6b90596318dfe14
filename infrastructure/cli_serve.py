"""``contracts serve --port N [--host 127.0.0.1]``: the HTTP API under uvicorn.

The composition root of the API process: settings (``CONTRACTS_*``) -> services, API store
(keys, idempotency keys, sandbox clock: same database as the events), clock (the database
clock in sandbox mode, the system clock in production), read models, background workers,
then the FastAPI app.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

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
    p.set_defaults(func=_run)


def build_clock(settings: Settings, store: ApiStore) -> Clock:
    """Sandbox: the shared, settable database clock. Production: the system clock."""
    return DatabaseClock(store) if settings.mode == "sandbox" else SystemClock()


def build_read_side(services: Services, clock: Clock, in_process: bool | None = None) -> Any:
    """The read models; their late interest is computed as of the service clock's date."""
    from infrastructure.read_side import build_read_models

    return build_read_models(services, clock=clock, in_process=in_process)


def start_background_workers(services: Services, read_models: Any, clock: Clock) -> Callable[[], None]:
    """Start what runs beside the API in this process; returns a function that stops it all.

    - the projection runner of the read models when they run in process (the embedded SQLite
      default; the runner polls the notification log);
    - the deadline scheduler (``infrastructure.scheduler``): every API process runs one and
      leader election lets exactly one of them sweep at a time. In sandbox mode moving the
      service clock (``clock.set``) also triggers a sweep at once, so a client sees deadlines fire.
    """
    from infrastructure.scheduler import build_scheduler

    stops: list[Callable[[], None]] = []
    start = getattr(read_models, "start", None)
    if start is not None:
        start()
        stops.append(getattr(read_models, "stop", lambda: None))
    scheduler = build_scheduler(services, read_models, clock)
    scheduler.start()
    stops.append(scheduler.shutdown)
    setter = getattr(clock, "set", None)
    if callable(setter) and services.settings.mode == "sandbox":
        def set_and_sweep(to: Any) -> Any:
            result = setter(to)
            scheduler.trigger()
            return result

        clock.set = set_and_sweep  # type: ignore[attr-defined]

    def stop_all() -> None:
        for stop in reversed(stops):
            try:
                stop()
            except Exception:  # keep stopping the others
                log.exception("stopping a background worker failed")
    return stop_all


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = Settings()
    logging.getLogger().setLevel(settings.log_level)
    services = build_services(settings)
    store = build_api_store(persistence_env(settings))
    store.setup()
    clock = build_clock(settings, store)
    read_models = build_read_side(services, clock, True if args.with_projections else None)
    stop_workers = start_background_workers(services, read_models, clock)
    app = create_app(services, read_models, clock, store, mode=settings.mode)
    log.info("serving %s mode on http://%s:%d (events in %s)", settings.mode, args.host, args.port,
             settings.database_label())
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(),
                    server_header=False)
    finally:
        stop_workers()
        store.close()
        services.close()
    return 0
