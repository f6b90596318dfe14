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
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TypeVar

COMMAND_MODULES = (
    "api.cli.demo",
    "api.cli.projections",
    "api.cli.serve",
    "api.cli.start",
    "api.cli.keys",
    "api.cli.audit",
    "api.cli.backup",
    "api.cli.scheduler",
    "api.cli.snapshots",
    "api.cli.webhooks",
    "api.cli.migrate",
    "api.cli.settlement",
    "api.cli.invoices",
)
EXIT_USAGE = 2
EXIT_DATABASE = 1
T = TypeVar("T")
LONG_RUNNING = frozenset({"serve", "start", "scheduler", "projections"})  # their logs report reconnects


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contracts", description="Event-sourced contract lifecycle service")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON (one document on stdout)")


def emit(args: argparse.Namespace, document: object, text: str | Sequence[str]) -> None:
    """``document`` as JSON with ``--json``, else ``text`` (a line or lines)."""
    import json

    if getattr(args, "json", False):
        print(json.dumps(document, ensure_ascii=False, default=str))
        return
    for line in [text] if isinstance(text, str) else text:
        print(line)


def metrics_flags(p: argparse.ArgumentParser) -> None:
    """``--metrics-port``/``--metrics-host`` of a standalone long-running process (docs/operations.md, Metrics)."""
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve this process's Prometheus metrics on this port (no key: keep it private)")
    p.add_argument("--metrics-host", default="127.0.0.1", help="interface of --metrics-port (default 127.0.0.1)")


def start_metrics(args: argparse.Namespace) -> None:
    from infrastructure.metrics import serve_process_metrics

    serve_process_metrics(getattr(args, "metrics_port", None), getattr(args, "metrics_host", "127.0.0.1"))


def run_until_stopped(args: argparse.Namespace, log: logging.Logger, stopping: str, open_parts: Callable[[], T],
                      follow: Callable[[T, threading.Event], None], close: Callable[[T], None],
                      reason: Callable[[BaseException], object] = str) -> int:
    """The loop of a standalone long-running process (``projections run``, ``webhooks run``): open
    its parts, ``follow`` until SIGTERM or SIGINT, and when the database cannot be opened or is lost
    (``TRANSIENT``), log it (with ``reason(exc)``) and try again, backing off 0.5 s doubling to 10 s;
    it never exits on a database outage. ``stopping`` is what the signal's log line says next."""
    from infrastructure.read_side import TRANSIENT

    settings = args.settings
    start_metrics(args)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: %s", signum, stopping)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    backoff = 0.5
    while not stop.is_set():  # the database may not be up yet: keep trying, do not exit
        try:
            parts = open_parts()
        except TRANSIENT as exc:
            log.warning("cannot open %s (%s); retrying in %.1fs", settings.database_label(), reason(exc), backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
            continue
        try:
            follow(parts, stop)
        except TRANSIENT as exc:
            log.warning("lost %s (%s); retrying in %.1fs", settings.database_label(), reason(exc), backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
        finally:
            close(parts)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from domain.errors import DomainError
    from infrastructure.log_safety import configure as configure_logging
    from infrastructure.settings import SettingsError, load_settings

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(args.settings.log_level, args.settings.log_repeat_limit,  # escaped, rate-limited lines
                      args.settings.log_repeat_window_seconds, args.settings.log_format)  # (issues 14, 20)
    if args.command not in LONG_RUNNING:
        # a one-shot command reports a database error in one line (below), not the pool's retries
        logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    try:
        return int(args.func(args) or 0)
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if not is_database_error(exc):
            raise
        print(f"error: {database_error_line(exc, args.settings.database_label())}", file=sys.stderr)
        return EXIT_DATABASE


def is_database_error(exc: BaseException) -> bool:
    """An error of the store (driver, pool or the library's persistence errors), also when wrapped."""
    import sqlite3

    import psycopg
    from eventsourcing.persistence import PersistenceError

    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, sqlite3.Error | psycopg.Error | PersistenceError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def database_error_line(exc: BaseException, where: str) -> str:
    """One line naming the store (never its password) and the error's kind and first line."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"database {where}: {type(exc).__name__}{': ' + first if first else ''}"
