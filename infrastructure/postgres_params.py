"""The PostgreSQL connection parameters, derived in this one place.

``postgres_env(url)`` turns ``CONTRACTS_DATABASE_URL`` into the ``eventsourcing.postgres``
settings (``POSTGRES_*``); ``conninfo(env)`` turns those settings back into a libpq connection
string for the connections the service opens beside the library's pool (API store, leader lock).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from psycopg.conninfo import make_conninfo

POSTGRES_MODULE = "infrastructure.persistence.postgres_factory"
CONNECT_TIMEOUT = "5"


def postgres_env(url: str, schema: str = "public") -> dict[str, str]:
    """eventsourcing settings for the database at ``url`` (``postgresql://user:pass@host:port/db``)."""
    parts = urlsplit(url)
    return {
        "PERSISTENCE_MODULE": POSTGRES_MODULE,
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
        "POSTGRES_POOL_SIZE": "8",
        "POSTGRES_MAX_OVERFLOW": "8",
    }


def conninfo(env: Mapping[str, str] | Any) -> str:
    """A libpq connection string from eventsourcing ``POSTGRES_*`` settings (a mapping, or the
    application's ``env``, which looks keys up with and without the application's prefix)."""
    return make_conninfo(
        dbname=env.get("POSTGRES_DBNAME") or "postgres",
        host=env.get("POSTGRES_HOST") or "127.0.0.1",
        port=env.get("POSTGRES_PORT") or "5432",
        user=env.get("POSTGRES_USER") or "postgres",
        password=env.get("POSTGRES_PASSWORD") or None,
        connect_timeout=env.get("POSTGRES_CONNECT_TIMEOUT") or CONNECT_TIMEOUT,
    )


def schema_of(env: Mapping[str, str] | Any) -> str:
    return env.get("POSTGRES_SCHEMA") or "public"
