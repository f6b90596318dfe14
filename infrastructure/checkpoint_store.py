"""The service's own copy of its checkpoints: a table ``audit_checkpoints`` next to the events
(``application.checkpoints.CheckpointStore``). Append-only by intent; whoever can write to the
database can still delete rows here, which is why checkpoints are also exported to files
(``CONTRACTS_CHECKPOINT_DIR``, ``contracts audit checkpoint --out``).

Rows are JSON text, parsed with ``json`` and checked by signature before use: nothing read
from here is unpickled or executed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from application.checkpoints import parse

TABLE = "audit_checkpoints"  # written literally in the SQLite statements below (no SQL text is spliced)


class SQLiteCheckpointStore:
    def __init__(self, path: str) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("CREATE TABLE IF NOT EXISTS audit_checkpoints (sequence INTEGER PRIMARY KEY, "
                     "position INTEGER NOT NULL, created_at TEXT NOT NULL, document TEXT NOT NULL)")
        return conn

    def latest(self) -> dict[str, Any] | None:
        conn = self._connect()
        try:
            row = conn.execute("SELECT document FROM audit_checkpoints ORDER BY sequence DESC LIMIT 1").fetchone()
        finally:
            conn.close()
        return parse(row[0]) if row else None

    def add(self, document: Mapping[str, Any]) -> None:
        conn = self._connect()
        try:
            conn.execute("INSERT INTO audit_checkpoints (sequence, position, created_at, document) VALUES (?, ?, ?, ?)",
                         (document["sequence"], document["position"], document["created_at"],
                          json.dumps(document, sort_keys=True)))
        finally:
            conn.close()


class PostgresCheckpointStore:
    def __init__(self, conninfo: str, schema: str = "public") -> None:
        from psycopg import sql

        self.conninfo = conninfo
        self._table = sql.Identifier(schema, TABLE)
        self._schema = sql.Identifier(schema)

    def _connect(self) -> Any:
        import psycopg
        from psycopg import sql

        conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (sequence bigint PRIMARY KEY, position bigint NOT NULL, "
                             "created_at timestamptz NOT NULL, document text NOT NULL)").format(self._table))
        return conn

    def latest(self) -> dict[str, Any] | None:
        from psycopg import sql

        with self._connect() as conn:
            row = conn.execute(sql.SQL("SELECT document FROM {} ORDER BY sequence DESC LIMIT 1").format(
                self._table)).fetchone()
        return parse(row[0]) if row else None

    def add(self, document: Mapping[str, Any]) -> None:
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(sql.SQL("INSERT INTO {} (sequence, position, created_at, document) VALUES (%s, %s, %s, %s)")
                         .format(self._table), (document["sequence"], document["position"], document["created_at"],
                                                json.dumps(document, sort_keys=True)))


def build_checkpoint_store(persistence: Mapping[str, str] | Any) -> SQLiteCheckpointStore | PostgresCheckpointStore:
    """Next to the events, from the eventsourcing persistence settings (as ``build_api_store``)."""
    module = persistence.get("PERSISTENCE_MODULE") or ""
    if "sqlite" in module:
        path = persistence.get("SQLITE_DBNAME") or ""
        if not path or "memory" in path:
            raise ValueError("checkpoints need a file-backed SQLite store")
        return SQLiteCheckpointStore(path)
    if "postgres" in module:
        from infrastructure import postgres_params

        return PostgresCheckpointStore(postgres_params.conninfo(persistence), postgres_params.schema_of(persistence))
    raise ValueError("checkpoints need SQLite or PostgreSQL persistence")
