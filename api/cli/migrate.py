"""``contracts migrate``: apply the schema migrations now (every process also does it at start,
under the same PostgreSQL advisory lock; ``infrastructure.schema``)."""

from __future__ import annotations

import argparse

from api.cli import emit, json_flag
from infrastructure.schema import SCHEMA_VERSION, migrate, schema_version


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("migrate", help="create or upgrade the database schema (safe to run beside running processes)")
    p.add_argument("--status", action="store_true", help="only print the schema version")
    json_flag(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = args.settings
    lines: list[str] = []
    applied: list[int] | None = None
    if not args.status:
        applied = list(migrate(settings))
        lines.append(f"applied migrations {', '.join(map(str, applied))}" if applied else "no migration pending")
    version = schema_version(settings)
    lines.append(f"schema version {version} of {SCHEMA_VERSION} in {settings.database_label()}")
    emit(args, {"applied": applied, "version": version, "latest": SCHEMA_VERSION,
                "database": settings.database_label()}, lines)
    return 0 if version == SCHEMA_VERSION else 1
