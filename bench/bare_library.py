"""The library baseline of the append scenario (issue 21): a bare ``eventsourcing`` 9.5
application with a trivial aggregate on the same PostgreSQL, with the library's defaults
(``eventsourcing.postgres``, no aggregate cache, one transaction per ``save``: ``LOCK TABLE``,
``NOTIFY`` and the INSERT). A command is what the library's README shows: get the aggregate,
call a command method that triggers one event carrying a payload of the service's size, save.

Its tables are ``bare_events`` (the application is named ``bare``), beside the service's in
the scenario's scratch database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from psycopg.conninfo import conninfo_to_dict

NAMESPACE = uuid.UUID("0b6a8f0e-21aa-4d4c-9d1e-3c2b7a8e5f10")


class Note(Aggregate):
    """A trivial aggregate: one text field, one event per change."""

    @staticmethod
    def create_id(n: int) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, str(n))

    @event("Created")
    def __init__(self, n: int, text: str) -> None:
        self.n = n
        self.text = text

    @event("Changed")
    def change(self, text: str) -> None:
        self.text = text


class BareApplication(Application[uuid.UUID]):
    name = "bare"


def bare_application(dsn: str, pool_size: int = 20, max_overflow: int = 10) -> BareApplication:
    p = conninfo_to_dict(dsn)
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": str(p["dbname"]),
           "POSTGRES_HOST": str(p.get("host", "127.0.0.1")), "POSTGRES_PORT": str(p.get("port", "5432")),
           "POSTGRES_USER": str(p.get("user", "postgres")), "POSTGRES_PASSWORD": str(p.get("password", "")),
           "POSTGRES_POOL_SIZE": str(pool_size), "POSTGRES_MAX_OVERFLOW": str(max_overflow),
           "CREATE_TABLE": "y"}
    return BareApplication(env=env)


def create_notes(app: BareApplication, numbers: Sequence[int], text: str, chunk: int = 500) -> None:
    for start in range(0, len(numbers), chunk):
        app.save(*[Note(n, text) for n in numbers[start:start + chunk]])


def bare_worker(app: BareApplication, per_client: int, base: int, text: str) -> Callable[[int], Callable[[], None]]:
    """Client ``index`` round-robins over notes ``base + index * per_client ...`` (created before)."""

    def make(index: int) -> Callable[[], None]:
        ids = [Note.create_id(base + index * per_client + k) for k in range(per_client)]
        counter = [0]

        def op() -> None:
            n = counter[0]
            counter[0] = n + 1
            note: Any = app.repository.get(ids[n % per_client])
            note.change(f"{text} {index}-{n}")
            app.save(note)
        return op
    return make
