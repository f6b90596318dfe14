"""``contracts backup FILE`` / ``contracts restore FILE``: a consistent copy of the embedded SQLite
store, taken with SQLite's online backup API (``sqlite3.Connection.backup``).

The backup API copies the database page by page under SQLite's own locking, WAL content
included, so it is safe while ``contracts serve`` writes (a ``cp`` of the file misses what is
still in the ``-wal`` file). Events, hash chain, read models, API keys, idempotency keys and the
sandbox clock live in the one file, so one backup holds them all.

``restore`` copies a backup over the configured store the same way; stop the service first (it
refuses when the scheduler's lock shows a process serving the store). A restored store is
checked with ``contracts audit verify``.

PostgreSQL: both refuse and point to ``docs/operations.md`` (``pg_dump`` for a copy, base
backups with WAL archiving for point-in-time recovery): a database server is backed up with its
own tools.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from api.cli import emit, json_flag
from infrastructure.bootstrap import leader_lock_for, persistence_env
from infrastructure.settings import Settings

POSTGRES_REFUSAL = ("{command} works on the embedded SQLite store only; back up PostgreSQL with its own tools "
                    "(pg_dump for a logical copy, pg_basebackup with WAL archiving for point-in-time recovery): "
                    "see docs/operations.md, 'Backup and restore'")
PAGES_PER_STEP = 1024  # copy in steps so a serving process is never blocked for long


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    b = sub.add_parser("backup", help="copy the embedded SQLite store to FILE (safe while the service runs)")
    b.add_argument("file", type=Path, help="the backup file to write (must not exist)")
    json_flag(b)
    b.set_defaults(func=_backup)
    r = sub.add_parser("restore", help="replace the embedded SQLite store with the backup FILE (service stopped)")
    r.add_argument("file", type=Path, help="a file written by `contracts backup`")
    json_flag(r)
    r.set_defaults(func=_restore)


def _sqlite_path(settings: Settings, command: str) -> Path | None:
    if settings.database_url is not None:
        print(f"error: {POSTGRES_REFUSAL.format(command=command)}", file=sys.stderr)
        return None
    return Path(settings.sqlite_path)


def copy_database(source: Path, target: Path) -> int:
    """Copy ``source`` to ``target`` with the online backup API; returns the page count."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=PAGES_PER_STEP)
            (pages,) = dst.execute("PRAGMA page_count").fetchone()
        finally:
            dst.close()
    finally:
        src.close()
    return int(pages)


def _check(path: Path) -> str | None:
    """None when ``path`` is a sound SQLite database holding the event store; else why not."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (result,) = db.execute("PRAGMA integrity_check").fetchone()
            if result != "ok":
                return f"integrity check failed: {result}"
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stored_events'"
                          ).fetchone() is None:
                return "it holds no event store (table stored_events)"
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return f"not a SQLite database ({exc})"
    return None


def _backup(args: argparse.Namespace) -> int:
    source = _sqlite_path(args.settings, "backup")
    if source is None:
        return 2
    if not source.exists():
        print(f"error: no store at {source}", file=sys.stderr)
        return 2
    target: Path = args.file
    if target.exists():
        print(f"error: {target} exists; give a new file name", file=sys.stderr)
        return 2
    pages = copy_database(source, target)
    problem = _check(target)
    if problem is not None:
        target.unlink()
        print(f"error: the backup of {source} is not sound: {problem}", file=sys.stderr)
        return 1
    emit(args, {"source": str(source), "backup": str(target), "pages": pages, "bytes": target.stat().st_size},
         f"backed up {source} to {target} ({pages} pages, {target.stat().st_size} bytes)")
    return 0


def _restore(args: argparse.Namespace) -> int:
    target = _sqlite_path(args.settings, "restore")
    if target is None:
        return 2
    backup: Path = args.file
    problem = _check(backup) if backup.exists() else "no such file"
    if problem is not None:
        print(f"error: cannot restore {backup}: {problem}", file=sys.stderr)
        return 2
    lock = leader_lock_for(persistence_env(args.settings))
    if not lock.acquire():
        print(f"error: a process is serving {target} (it holds the {lock.describe()}); stop it before restoring",
              file=sys.stderr)
        return 2
    try:
        pages = copy_database(backup, target)
    finally:
        lock.release()
    emit(args, {"store": str(target), "backup": str(backup), "pages": pages},
         f"restored {target} from {backup} ({pages} pages); check it with `contracts audit verify`")
    return 0
