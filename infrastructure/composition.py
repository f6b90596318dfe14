"""The one composition root: settings -> catalog, policy, calendar, persistence, application.

Nothing here runs at import; callers build what they need from a ``Settings`` value.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from application.service import ContractsApplication
from domain.calendar import BusinessCalendar
from domain.catalog import Catalog
from domain.policy import Policy
from infrastructure.catalog_loader import load_catalog
from infrastructure.japanese_holidays import business_calendar
from infrastructure.settings import Settings

SQLITE_MODULE = "infrastructure.persistence.sqlite_factory"
POSTGRES_MODULE = "infrastructure.persistence.postgres_factory"
_AUDITED = {"eventsourcing.sqlite": SQLITE_MODULE, "eventsourcing.postgres": POSTGRES_MODULE}


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


def postgres_env(url: str, schema: str = "public") -> dict[str, str]:
    parts = urlsplit(url)
    return {
        "PERSISTENCE_MODULE": POSTGRES_MODULE,
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_POOL_SIZE": "8",
        "POSTGRES_MAX_OVERFLOW": "8",
    }


def audited(env: dict[str, str]) -> dict[str, str]:
    """The library's stock SQLite / PostgreSQL modules (as in the test fixtures) replaced by
    ours, so personal data is never stored in clear and every event is chained."""
    module = env.get("PERSISTENCE_MODULE", "")
    return {**env, "PERSISTENCE_MODULE": _AUDITED[module]} if module in _AUDITED else env


@dataclass
class Services:
    """Everything a process needs, built once from settings."""

    settings: Settings
    catalog: Catalog
    policy: Policy
    calendar: BusinessCalendar
    app: ContractsApplication

    def close(self) -> None:
        self.app.close()


def build_services(settings: Settings, env: dict[str, str] | None = None) -> Services:
    """Build the application; ``env`` overrides the persistence settings (tests, tools)."""
    catalog = load_catalog(settings.catalog_path)
    policy = settings.policy()
    calendar = business_calendar(policy)
    app_env = audited(env) if env is not None else persistence_env(settings)
    if settings.aggregate_cache_size and "AGGREGATE_CACHE_MAXSIZE" not in app_env:
        # fast-forward: a cached aggregate is brought up to date from the store before use, so
        # several processes (API, scheduler) can share the database safely
        app_env = {**app_env, "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
                   "AGGREGATE_CACHE_FASTFORWARD": "y"}
    app = ContractsApplication(app_env, catalog, policy, calendar)
    return Services(settings, catalog, policy, calendar, app)
