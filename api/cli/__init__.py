"""``contracts`` command line. Each command group lives in its own module of this package with a
``register(subparsers)`` function; this module assembles them and holds ``main``.

``main`` reads the settings once (``infrastructure.settings.load_settings``): an invalid
``CONTRACTS_*`` value stops every command with one line naming the variable, exit code 2. Each
command gets them as ``args.settings`` and builds its parts with ``infrastructure.bootstrap``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "api.cli.demo",
    "api.cli.projections",
    "api.cli.serve",
    "api.cli.keys",
    "api.cli.audit",
    "api.cli.scheduler",
    "api.cli.snapshots",
    "api.cli.webhooks",
)
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contracts", description="Event-sourced contract lifecycle service")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from domain.errors import DomainError
    from infrastructure.settings import SettingsError, load_settings

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(args.settings.log_level)
    try:
        return int(args.func(args) or 0)
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
