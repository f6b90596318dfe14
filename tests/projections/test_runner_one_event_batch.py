"""The projection runner's fixed cost per batch on PostgreSQL (issue 21: at 16 clients a batch is
one or two events): the batch is read by a statement made once (the library's rows), and the
tracking row's move and the position's announcement (read-your-writes in the API processes) are ONE
statement, in the batch's transaction; a move that is not forward is refused as the library's is."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import eventsourcing.postgres as es_pg
import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from psycopg.sql import SQL, Identifier

from domain.contract import BillingCycle
from infrastructure.bootstrap import Services, build_read_models, build_services
from infrastructure.settings import Settings

pytestmark = [pytest.mark.postgres]

PERSON = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo", "contact_email": "a@example.invalid"}
AT = datetime(2026, 3, 24, 1, 0, tzinfo=UTC)
TOPICS = ["Opened", "Applied", "Opened", "ContractRegistered"]  # the contract; its customer account


@pytest.fixture
def services(fresh_pg_env: dict[str, str], tmp_path: Path) -> Iterator[Services]:
    s = build_services(Settings(sqlite_path=tmp_path / "unused.sqlite", database_url=None), fresh_pg_env)
    yield s
    s.close()


def _open(services: Services) -> uuid.UUID:
    return services.app.open_contract("CUST-RUN", "kintone", "standard", 10, PERSON, AT,
                                      cycle=BillingCycle.MONTHLY).aggregate_id


def test_the_batch_read_returns_the_librarys_rows(services: Services) -> None:
    _open(services)
    recorder = services.app.recorder
    for start, limit in ((1, 10), (2, 1), (3, 10), (99, 5)):
        mine = recorder.select_notifications(start=start, limit=limit)
        library = es_pg.PostgresApplicationRecorder.select_notifications(recorder, start=start, limit=limit)  # type: ignore[arg-type]
        assert mine == library
    assert [n.topic.rsplit(".", 1)[-1] for n in recorder.select_notifications(start=1, limit=10)] == TOPICS
    assert [n.id for n in recorder.select_notifications(start=1, limit=10, stop=2)] == [1, 2]  # the library's


def test_a_one_event_batch_moves_and_announces_its_position_in_one_statement(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    models = build_read_models(services)
    cid = _open(services)
    models.runner.catch_up()
    store: Any = models.store
    assert store.position() == 4
    listener = store._connect()
    listener.execute(SQL("LISTEN {}").format(Identifier(store.position_channel)))
    services.app.change_contractor(cid, {**PERSON, "name": "Renamed K.K."}, AT)  # notification 5
    executed: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(query if isinstance(query, str) else query.as_string(self))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    assert models.runner.run_once() == 1
    monkeypatch.undo()
    announced = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
    listener.close()
    assert announced == ["5"] and store.position() == 5
    tracking = [q for q in executed if "read_models_tracking" in q]
    assert len(tracking) == 2  # the row locked first, then moved and announced in one statement
    assert "FOR UPDATE" in tracking[0] and "pg_notify" in tracking[1] and "INSERT INTO" in tracking[1]
    assert not any("pg_notify" in q for q in executed if "read_models_tracking" not in q)
    with store.datastore.transaction(commit=False) as cur, pytest.raises(IntegrityError):
        store._advance(cur, 5)  # not forward: refused, as the library's insert refuses it
    assert store.position() == 5

