"""One tracked write in the application's SQLite file, as the read tables and the webhook tables
both make it: ``BEGIN IMMEDIATE`` takes the write lock before anything is read (so the position
read is the one the write builds on), commit when the block ends, rollback on any exception."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def immediate_write(datastore: Any) -> Iterator[Any]:
    """A cursor inside ``BEGIN IMMEDIATE`` on one of ``datastore``'s connections."""
    with datastore.get_connection(commit=True) as conn:
        cursor = conn.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            yield cursor
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            cursor.sqlite_cursor.close()


def tracked_position(cursor: Any, tracking_name: str) -> int:
    """The position the ``tracking`` table holds for ``tracking_name`` (0 when it holds none)."""
    cursor.execute("SELECT notification_id FROM tracking WHERE application_name = ?", (tracking_name,))
    row = cursor.fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0
