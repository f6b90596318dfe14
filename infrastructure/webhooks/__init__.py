"""Webhooks (spec 12): the tables, the HTTP sender and the worker that derives and delivers."""

from __future__ import annotations

from typing import Any, cast

from infrastructure.webhooks.store import SecretBox, WebhookTables


def open_webhook_store(app: Any, master_key: bytes | None = None) -> WebhookTables:
    """The webhook store of ``app``'s persistence (same database, same schema, same pool)."""
    from eventsourcing.postgres import PostgresFactory
    from eventsourcing.sqlite import SQLiteFactory

    factory = app.factory
    store: WebhookTables
    if isinstance(factory, PostgresFactory):
        from infrastructure.webhooks.postgres import PostgresWebhookStore

        store = cast(WebhookTables, factory.tracking_recorder(PostgresWebhookStore))
        store.events_table = events_table_of(app.recorder)
    elif isinstance(factory, SQLiteFactory):
        from infrastructure.webhooks.sqlite import SQLiteWebhookStore

        store = cast(WebhookTables, factory.tracking_recorder(SQLiteWebhookStore))
    else:
        raise NotImplementedError(f"no webhook store for {type(factory).__name__} (use SQLite or PostgreSQL)")
    store.box = SecretBox(master_key)
    return store


def events_table_of(recorder: Any) -> str | None:
    """The qualified name of a PostgreSQL application recorder's events table (None: not one)."""
    from psycopg.sql import SQL, Identifier

    table, schema = getattr(recorder, "events_table_name", None), getattr(recorder.datastore, "schema", None)
    if not isinstance(table, str) or not isinstance(schema, str):
        return None
    return SQL("{}.{}").format(Identifier(schema), Identifier(table)).as_string(None)
