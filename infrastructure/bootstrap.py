"""The one composition root: a validated ``Settings`` -> everything a process runs.

Every entry point (the HTTP app of ``contracts serve`` and its ``--workers``, each ``contracts``
command, the demo, the bench harness) builds its parts here, the way cosmicpython's
``bootstrap.py`` does: catalog, policy and calendar, the persistence settings and the
application (``build_services``), the read models (``build_read_models``), the API store
(``build_api_store``), the clock (``build_clock``), the leader lock and the deadline scheduler
(``build_scheduler``), and the background workers of an API process
(``start_background_workers``). ``bootstrap(settings)`` assembles the usual set (``Process``).

Nothing here runs at import; nothing here reads the environment: ``Settings`` did that once
(``infrastructure.settings.load_settings``) and every setting reaches the library through the
application's ``env`` built here.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from application.clock import Clock, SystemClock
from application.invoice_search import CounterpartyIndex
from application.notifications.delivery import Deliverer
from application.notifications.endpoints import EndpointAdmin
from application.notifications.ports import Sender
from application.notifications.queue import QueueDeriver
from application.notifications.service import Webhooks
from application.ports import ApiStore, LeaderLock
from application.projections.projector import Projector
from application.service import ContractsApplication
from application.sweep import Sweeper, SweepReport
from domain.calendar import BusinessCalendar
from domain.catalog import Catalog
from domain.policy import Policy
from infrastructure import postgres_params
from infrastructure.api_store import PostgresApiStore, SQLiteApiStore
from infrastructure.catalog_loader import load_catalog
from infrastructure.checkpointing import periodic_checkpointer
from infrastructure.clock_store import DatabaseClock
from infrastructure.japanese_holidays import business_calendar
from infrastructure.metrics import count_appended
from infrastructure.postgres_params import POSTGRES_MODULE, postgres_env
from infrastructure.read_side import ProjectionRunner, ReadModelsImpl
from infrastructure.read_store import open_read_store
from infrastructure.scheduler import (
    DeadlineScheduler,
    FileLock,
    InProcessLock,
    PostgresAdvisoryLock,
    default_interval,
)
from infrastructure.settings import ENV_PREFIX, Settings, decode_master_key
from infrastructure.webhooks import open_webhook_store
from infrastructure.webhooks.http_sender import HttpSender
from infrastructure.webhooks.worker import WebhookWorker

log = logging.getLogger("contracts.bootstrap")

SQLITE_MODULE = "infrastructure.persistence.sqlite_factory"
_AUDITED = {"eventsourcing.sqlite": SQLITE_MODULE, "eventsourcing.postgres": POSTGRES_MODULE}

__all__ = ["POSTGRES_MODULE", "SQLITE_MODULE", "Process", "Services", "WebhookParts", "audited", "bootstrap",
           "build_api_store", "build_clock", "build_read_models", "build_scheduler", "build_services", "build_webhooks",
           "leader_lock_for", "persistence_env", "postgres_env", "start_background_workers"]


# --------------------------------------------------------------------------- persistence settings


def persistence_env(settings: Settings) -> dict[str, str]:
    """eventsourcing settings for the configured store (SQLite file by default): the library's
    recorders plus the hash chain and per-contract keys (``infrastructure.persistence``)."""
    if settings.database_url is None:
        return {
            "PERSISTENCE_MODULE": SQLITE_MODULE,
            "SQLITE_DBNAME": str(settings.sqlite_path),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    return postgres_env(settings.database_url)


def audited(env: Mapping[str, str]) -> dict[str, str]:
    """The library's stock SQLite / PostgreSQL modules (as in the test fixtures) replaced by
    ours, so personal data is never stored in clear and every event is chained."""
    module = env.get("PERSISTENCE_MODULE", "")
    return {**env, "PERSISTENCE_MODULE": _AUDITED[module]} if module in _AUDITED else dict(env)


def library_env(settings: Settings) -> dict[str, str]:
    """The settings the persistence modules read from the application's ``env``, already
    validated, under the names they look up (``CONTRACTS_`` + key: the application's prefix)."""
    values = {
        "KEY_CACHE_SECONDS": repr(float(settings.key_cache_seconds)),
        "PG_GROUP_COMMIT": "y" if settings.pg_group_commit else "n",
        "PG_GROUP_COMMIT_MAX_BATCH": str(settings.pg_group_commit_max_batch),
        "PG_GROUP_COMMIT_LINGER_MS": repr(float(settings.pg_group_commit_linger_ms)),
    }
    master_key = settings.master_key_text()
    if master_key is not None:
        values["MASTER_KEY"] = master_key
    if settings.aggregate_cache_size:
        # fast-forward: a cached aggregate is brought up to date from the store before use, so
        # several processes (API, scheduler) can share the database safely
        values["AGGREGATE_CACHE_MAXSIZE"] = str(settings.aggregate_cache_size)
        values["AGGREGATE_CACHE_FASTFORWARD"] = "y"
    return {ENV_PREFIX + key: value for key, value in values.items()}


def _has(env: Mapping[str, str], prefixed: str) -> bool:
    return prefixed in env or prefixed.removeprefix(ENV_PREFIX) in env


# --------------------------------------------------------------------------- the application


@dataclass
class Services:
    """Catalog, policy, calendar and the application of one process, built from settings."""

    settings: Settings
    catalog: Catalog
    policy: Policy
    calendar: BusinessCalendar
    app: ContractsApplication
    env: dict[str, str] = field(default_factory=dict)  # the application's settings (another process builds it again)

    def close(self) -> None:
        self.app.close()


def build_services(settings: Settings, env: Mapping[str, str] | None = None, *, migrate: bool = True) -> Services:
    """Build the application; ``env`` replaces the persistence settings (tests, tools); a key it
    gives wins over the settings' value. The schema migrations are applied first
    (``infrastructure.schema``: under an advisory lock on PostgreSQL, so processes starting at once
    never collide creating tables), unless ``env`` is given; the application's event tables are
    then not created again on PostgreSQL (the library's ``CREATE OR REPLACE FUNCTION`` beside
    another process's migration fails with "tuple concurrently updated"). A new part that creates
    tables belongs in ``infrastructure.schema.ensure_tables`` too."""
    policy = settings.policy()
    catalog = load_catalog(settings.catalog_path, policy.tax_rate)
    migrated = False
    if migrate and env is None:
        from infrastructure.schema import migrate as apply_migrations

        apply_migrations(settings)
        migrated = settings.database_url is not None
    calendar = business_calendar(policy)
    app_env = audited(env) if env is not None else persistence_env(settings)
    for key, value in library_env(settings).items():
        if not _has(app_env, key):
            app_env[key] = value
    if migrated:
        app_env[ENV_PREFIX + "SCHEMA_MIGRATED"] = "y"  # the events tables exist: created under the lock
    app = InstrumentedApplication(app_env, catalog, policy, calendar)
    return Services(settings, catalog, policy, calendar, app, dict(app_env))


class InstrumentedApplication(ContractsApplication):
    """The application, counting the events it appends (``contracts_events_appended_total`` by type,
    ``infrastructure.metrics``) after each save."""

    name = "contracts"  # the library names a subclass after itself unless told: tables and tracking keep theirs

    def _notify(self, recordings: list[Any]) -> None:
        count_appended(r.domain_event for r in recordings)


# --------------------------------------------------------------------------- read side, API store, clock


_DEV_SEARCH_KEY = b"contracts: development counterparty search key (no master key set)"


def counterparty_search_key(settings: Settings) -> bytes:
    """The key of the invoice search's counterparty blind index (rule book 13):
    ``CONTRACTS_INVOICE_SEARCH_KEY``, else derived from the master key (HMAC with a fixed label),
    else a fixed development key (without a master key the data keys are unprotected too)."""
    if settings.invoice_search_key is not None:
        return settings.invoice_search_key_bytes()
    master = decode_master_key(settings.master_key_text())
    if master is not None:
        return hmac.new(master, b"invoice counterparty search", hashlib.sha256).digest()
    return _DEV_SEARCH_KEY


def build_read_models(services: Services, *, clock: Clock | None = None, in_process: bool | None = None,
                      start_runner: bool = False, batch_size: int = 500, poll_interval: float = 0.2
                      ) -> ReadModelsImpl:
    """Read models over ``services.app``'s database (tables created if missing).

    ``in_process`` (default: True on SQLite, False on PostgreSQL) makes ``start()`` run the
    projections in a thread of this process; on PostgreSQL run ``contracts projections run``.
    ``start_runner=True`` starts that thread now. Nothing else runs until asked.
    """
    from infrastructure.snapshots import open_snapshots

    store = open_read_store(services.app)
    index = CounterpartyIndex(counterparty_search_key(services.settings))
    runner = ProjectionRunner(services.app, store, Projector(services.policy, counterparty_index=index),
                              batch_size=batch_size, poll_interval=poll_interval,
                              rebuild_processes=services.settings.rebuild_processes,
                              worker_recipe=rebuild_worker_recipe(services))
    if in_process is None:
        in_process = not type(store).__name__.startswith("Postgres")
    models = ReadModelsImpl(services.app, store, runner, clock or SystemClock(), in_process,
                            snapshots=open_snapshots(services.app), counterparty_index=index)
    if start_runner:
        models.start_runner()
    return models


def rebuild_worker_recipe(services: Services) -> Callable[[], ProjectionRunner] | None:
    """How a worker process of a split rebuild (``infrastructure.rebuild_split``) builds its own
    projection runner over ``services``' database: picklable (the process is spawned), from the same
    settings and application env, creating no tables (the parent did; concurrent DDL collides on
    PostgreSQL). None for an in-memory SQLite database (no other process can open it)."""
    env = services.app.env
    name = env.get("SQLITE_DBNAME") or ""
    if "sqlite" in (env.get("PERSISTENCE_MODULE") or "") and (not name or ":memory:" in name or "mode=memory" in name):
        return None
    return functools.partial(_rebuild_worker, services.settings, {**services.env, ENV_PREFIX + "CREATE_TABLE": "n"})


def _rebuild_worker(settings: Settings, env: dict[str, str]) -> ProjectionRunner:
    services = build_services(settings, env)
    index = CounterpartyIndex(counterparty_search_key(settings))
    return ProjectionRunner(services.app, open_read_store(services.app),
                            Projector(services.policy, counterparty_index=index))


def build_api_store(persistence: Mapping[str, str] | Any) -> ApiStore:
    """The API's store next to the events, from the eventsourcing persistence settings
    (a mapping, or the application's ``env``, which looks keys up with and without prefix)."""
    module = persistence.get("PERSISTENCE_MODULE") or ""
    if "sqlite" in module:  # eventsourcing.sqlite, or a module built on it
        path = persistence.get("SQLITE_DBNAME") or ""
        if not path or "memory" in path:
            raise ValueError("the API needs a file-backed SQLite store (SQLITE_DBNAME is in memory)")
        return SQLiteApiStore(path)
    if "postgres" in module:
        return PostgresApiStore(postgres_params.conninfo(persistence), postgres_params.schema_of(persistence))
    raise ValueError(f"the API needs SQLite or PostgreSQL persistence, not {module or 'POPO'!r}")


def build_clock(settings: Settings, store: ApiStore | None) -> Clock:
    """Sandbox: the shared, settable database clock. Production: the system clock, except on a
    sandbox store (its clock row exists): there the stored sandbox clock stays the business time,
    so a command run without ``CONTRACTS_MODE=sandbox`` never sweeps a sandbox to the real date
    (which would fire months of deadlines at once and shred personal data for good)."""
    if settings.mode == "sandbox":
        if store is None:
            raise ValueError("the sandbox clock lives in the API store")
        return DatabaseClock(store)
    if store is not None and store.get_clock() is not None:
        log.warning("this is a sandbox store (its service clock is set): business time and deadlines follow the "
                    "stored sandbox clock, not the system clock, although CONTRACTS_MODE is production")
        return DatabaseClock(store)
    return SystemClock()


# --------------------------------------------------------------------------- scheduler


def leader_lock_for(env: Mapping[str, str] | Any) -> LeaderLock:
    """The lock that fits the store: advisory lock on PostgreSQL, file lock next to a SQLite file.

    ``env``: eventsourcing persistence settings (a mapping, or the application's ``env``)."""
    module = env.get("PERSISTENCE_MODULE") or ""
    if "postgres" in module:  # eventsourcing.postgres, or a module built on it
        return PostgresAdvisoryLock.for_env(env)
    if "sqlite" in module:
        name = env.get("SQLITE_DBNAME") or ""
        if name and ":memory:" not in name and "mode=memory" not in name:
            return FileLock(Path(f"{name}.scheduler.lock"))
    return InProcessLock()


def build_scheduler(services: Services, read_models: Any, clock: Clock, *,
                    interval_seconds: float | None = None, lock: LeaderLock | None = None,
                    **sweeper_options: Any) -> DeadlineScheduler:
    """A leader-elected ``DeadlineScheduler`` sweeping ``services.app`` with ``read_models``'
    deadlines as of ``clock``."""
    sweeper = Sweeper(services.app, read_models, clock, **sweeper_options)
    interval = interval_seconds if interval_seconds is not None else default_interval(services.settings.mode)

    def sweep(should_stop: Callable[[], bool]) -> SweepReport:
        return sweeper.run(should_stop=should_stop)

    scheduler = DeadlineScheduler(sweep, lock or leader_lock_for(services.app.env), interval)
    scheduler.sweeper = sweeper
    checkpointer = periodic_checkpointer(services)
    if checkpointer is not None:  # signed checkpoints of the chain (spec 13), by the leader only
        scheduler.leader_jobs.append(("audit-checkpoint", "signed chain checkpoint", checkpointer,
                                      services.settings.checkpoint_interval_minutes * 60.0))
    return scheduler


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


# --------------------------------------------------------------------------- webhooks (spec 12)


@dataclass
class WebhookParts:
    webhooks: Webhooks
    worker: WebhookWorker
    deliverer: Deliverer
    sender: Any
    in_process: bool  # the worker runs in this process's thread on ``start()``

    def start(self) -> None:
        if self.in_process:
            self.worker.start_in_thread()

    def stop(self) -> None:
        self.worker.stop_thread()
        close = getattr(self.sender, "close", None)
        if callable(close):
            close()


def build_webhooks(services: Any, *, in_process: bool | None = None, clock: Clock | None = None,
                   sender: Sender | None = None, batch_size: int = 500, poll_interval: float = 0.2) -> WebhookParts:
    """Delivery runs on wall-clock time (``SystemClock``) even in sandbox mode: signatures and
    retries concern the receivers' clocks, not the service's business time."""
    settings = services.settings
    app = services.app
    clock = clock or SystemClock()
    store = open_webhook_store(app, decode_master_key(app.env.get("MASTER_KEY")))  # as the data keys
    admin = EndpointAdmin(store, lambda: app.recorder.max_notification_id() or 0)
    deriver = QueueDeriver(app, store, clock, batch_size=batch_size)
    the_sender = sender if sender is not None else HttpSender(settings.webhook_timeout_seconds,
                                                               max_connections=max(8, settings.webhook_concurrency))
    deliverer = Deliverer(app, store, the_sender, clock, settings.delivery_policy(),
                          lease_seconds=max(settings.webhook_lease_seconds, settings.webhook_timeout_seconds * 2))
    worker = WebhookWorker(deriver, deliverer, concurrency=settings.webhook_concurrency, poll_interval=poll_interval)
    if in_process is None:
        in_process = not type(store).__name__.startswith("Postgres")
    return WebhookParts(Webhooks(app, store, admin, deriver, clock), worker, deliverer, the_sender, in_process)


# --------------------------------------------------------------------------- one process


@dataclass
class Process:
    """The parts of one process: application, API store (None when not asked for and not
    needed), clock and read models. ``close()`` stops and closes them in reverse order."""

    settings: Settings
    services: Services
    store: ApiStore | None
    clock: Clock
    read_models: ReadModelsImpl

    def close(self) -> None:
        self.read_models.stop()
        if self.store is not None:
            self.store.close()
        self.services.close()


def bootstrap(settings: Settings, *, api_store: bool = False, in_process: bool | None = None,
              env: Mapping[str, str] | None = None) -> Process:
    """Everything a process needs from ``settings``: the application, the API store (when
    ``api_store`` or the sandbox clock needs it; tables created), the clock and the read models
    (their runner not started; ``in_process`` as in ``build_read_models``). A process that fires
    deadlines passes ``api_store=True``, so a sandbox store keeps its sandbox clock (``build_clock``)."""
    services = build_services(settings, env)
    store: ApiStore | None = None
    try:
        if api_store or settings.mode == "sandbox":
            store = build_api_store(services.app.env)
            store.setup()
        clock = build_clock(settings, store)
        read_models = build_read_models(services, clock=clock, in_process=in_process)
    except BaseException:
        if store is not None:
            store.close()
        services.close()
        raise
    return Process(settings, services, store, clock, read_models)
