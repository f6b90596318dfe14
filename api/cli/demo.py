"""``contracts demo``: a scripted lifecycle on the embedded SQLite store."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from application.demo import run_demo
from infrastructure.bootstrap import build_services


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run a full scripted contract lifecycle and print what happened")
    p.add_argument("--db", type=Path, default=None,
                   help="SQLite file to use (default: a fresh temporary file)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "demo.sqlite"
        services = build_services(args.settings.model_copy(update={"sqlite_path": path, "database_url": None}))
        try:
            for line in run_demo(services.app):
                print(line)
        finally:
            services.close()
    return 0
