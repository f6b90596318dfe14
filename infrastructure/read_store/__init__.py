"""Read tables of the projections on SQLite (embedded default) and PostgreSQL.

Both stores subclass the library's tracking recorders (``SQLiteTrackingRecorder``,
``PostgresTrackingRecorder``): every batch writes its rows and the tracking position in one
transaction, after checking that the stored position is the one the batch started from.
"""

from __future__ import annotations

from typing import Any, cast

from application.projections.ports import ReadStore


def open_read_store(app: Any) -> ReadStore:
    """The read store of ``app``'s persistence (same database, same schema, same pool)."""
    from eventsourcing.postgres import PostgresFactory
    from eventsourcing.sqlite import SQLiteFactory

    factory = app.factory
    if isinstance(factory, PostgresFactory):
        from infrastructure.read_store.postgres import PostgresReadStore

        return cast(ReadStore, factory.tracking_recorder(PostgresReadStore))
    if isinstance(factory, SQLiteFactory):
        from infrastructure.read_store.sqlite import SQLiteReadStore

        return cast(ReadStore, factory.tracking_recorder(SQLiteReadStore))
    raise NotImplementedError(f"no read store for {type(factory).__name__} (use SQLite or PostgreSQL)")
