"""``contracts`` command line. Each command group lives in its own module with a
``register(subparsers)`` function; this file only assembles them."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "infrastructure.cli_demo",
    "infrastructure.cli_projections",
    "infrastructure.cli_serve",
    "infrastructure.cli_keys",
    "infrastructure.cli_audit",
    "infrastructure.cli_scheduler",
    "infrastructure.cli_snapshots",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contracts", description="Event-sourced contract lifecycle service")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from domain.errors import DomainError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
