"""A contract's first load in a process (issue 21): its events, its chain head and its two keys in
ONE statement (``ChainedPostgresApplicationRecorder._select_history``), so a first command costs two
round trips (that read and the write) where it cost five (events, records key, contacts key, chain
head, write). The events are those the library's query returns; the chain stays whole; a key row
that does not unwrap is still refused (issue 14.1); an aggregate without keys loads as before."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from application.audit import CONTACTS_KEY, key_id, verify_chain
from domain.contract import BillingCycle
from infrastructure.bootstrap import Services, build_services
from infrastructure.personal_data import ContractKeyError
from infrastructure.settings import Settings

pytestmark = [pytest.mark.postgres]

PERSON = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo", "contact_email": "a@example.invalid"}
AT = datetime(2026, 3, 24, 1, 0, tzinfo=UTC)


@pytest.fixture
def services(fresh_pg_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Services]]:
    opened: list[Services] = []

    def open_services(**env: str) -> Services:
        s = build_services(Settings(sqlite_path=tmp_path / "unused.sqlite", database_url=None),
                           {**fresh_pg_env, **env})
        opened.append(s)
        return s
    yield open_services
    for s in opened:
        s.close()


def _count_connections(recorder: Any) -> list[int]:
    """How many times ``recorder``'s datastore hands out a connection (one per statement here)."""
    datastore = recorder.datastore
    real = datastore.get_connection
    count = [0]

    def counted(*args: Any, **kwargs: Any) -> AbstractContextManager[Any]:
        count[0] += 1
        return real(*args, **kwargs)  # type: ignore[no-any-return]
    datastore.get_connection = counted
    return count


def test_a_first_command_reads_the_history_chain_head_and_keys_in_one_statement(
        services: Callable[..., Services]) -> None:
    writer = services()
    cid = writer.app.open_contract("CUST-HIST", "kintone", "standard", 10, PERSON, AT,
                                   cycle=BillingCycle.MONTHLY).aggregate_id
    writer.app.approve(cid, AT)
    cold = services()  # another process: nothing of the contract cached
    recorder, keys = cold.app.recorder, cold.app.factory.keys  # type: ignore[attr-defined]
    expected = recorder._select_shaped(cid, None, None, False, None)
    statements = _count_connections(recorder)
    result = cold.app.change_contractor(cid, {**PERSON, "name": "Renamed K.K."}, AT)
    assert statements[0] == 2  # the history (with head and keys), the write
    assert not keys.wanted(cid) and not keys.wanted(key_id(cid, CONTACTS_KEY))
    assert writer.app.get_contract(cid).contractor == {**PERSON, "name": "Renamed K.K."}
    assert result.version == len(expected) + 1
    assert verify_chain(writer.app, cid).ok
    history = recorder.select_events(cid)
    assert [(e.originator_id, e.originator_version, e.topic, e.state) for e in history[:len(expected)]] == \
        [(e.originator_id, e.originator_version, e.topic, e.state) for e in expected]


def test_an_aggregate_without_keys_and_one_that_does_not_exist(services: Callable[..., Services]) -> None:
    s = services()
    cid = s.app.open_contract("CUST-HIST", "kintone", "standard", 10, PERSON, AT,
                              cycle=BillingCycle.MONTHLY).aggregate_id
    account = s.app.find_account("CUST-HIST")  # a customer account: no key of its own
    assert account is not None and cid in account.contract_ids
    assert s.app.factory.keys.wanted(account.id)  # type: ignore[attr-defined]  # no row: nothing cached
    assert s.app.recorder.select_events(uuid.uuid4()) == []


def test_a_key_row_without_the_master_keys_wrap_is_still_refused(services: Callable[..., Services]) -> None:
    plain = services()  # no master key: the keys are stored as they are
    cid = plain.app.open_contract("CUST-HIST", "kintone", "standard", 10, PERSON, AT,
                                  cycle=BillingCycle.MONTHLY).aggregate_id
    guarded = services(CONTRACTS_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(ContractKeyError, match="not wrapped by CONTRACTS_MASTER_KEY: refused"):
        guarded.app.get_contract(cid)
    assert guarded.app.factory.keys.wanted(cid)  # type: ignore[attr-defined]  # the refused row was not cached


def test_a_key_read_once_its_cache_entry_expired_is_one_statement(services: Callable[..., Services],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    s = services()
    cid = s.app.open_contract("CUST-HIST", "kintone", "standard", 10, PERSON, AT,
                              cycle=BillingCycle.MONTHLY).aggregate_id
    s.app.get_contract(cid)  # cached, keys and all
    keys = s.app.factory.keys  # type: ignore[attr-defined]
    keys._cache.clear()  # as after KEY_CACHE_SECONDS

    def no_transaction(commit: bool) -> None:
        raise AssertionError("a key read in a transaction: BEGIN, SELECT, ROLLBACK")

    monkeypatch.setattr(keys, "transaction", no_transaction)
    statements = _count_connections(s.app.recorder)
    s.app.change_contractor(cid, {**PERSON, "name": "Renamed K.K."}, AT)  # seals under both keys again
    assert statements[0] == 3  # the records key, the contacts key, the write: one statement each
    monkeypatch.undo()
    assert services().app.get_contract(cid).contractor == {**PERSON, "name": "Renamed K.K."}


def test_a_stale_cached_contract_with_verify_cached_is_two_statements_and_its_chain_stays_whole(
        services: Callable[..., Services]) -> None:
    """``serve --workers N`` (``verify_cached``): a contract another process changed since this one
    cached it costs two statements, the events after the cached version with their chain head
    (``_select_after``) and the write; one that is current, the same two (the read finds nothing)."""
    mine, other = services(), services()
    cid = mine.app.open_contract("CUST-HIST", "kintone", "standard", 10, PERSON, AT,
                                 cycle=BillingCycle.MONTHLY).aggregate_id
    mine.app.approve(cid, AT)
    assert mine.app.get_contract(cid).version == 3  # cached here: opened, applied, approved
    other.app.change_contractor(cid, {**PERSON, "name": "Other K.K."}, AT)  # version 4, not cached here
    other.app.change_contractor(cid, {**PERSON, "name": "Other Again K.K."}, AT)  # version 5
    recorder = mine.app.recorder
    after = recorder.select_events(cid, gt=3)  # type: ignore[attr-defined]
    assert [e.originator_version for e in after] == [4, 5]
    stored = other.app.recorder.select_events(cid)[3:]
    assert [(e.topic, e.state) for e in after] == [(e.topic, e.state) for e in stored]
    assert recorder.linker._heads[cid][0] == 5  # type: ignore[attr-defined]  # the head, remembered
    assert recorder.select_events(cid, gt=5) == []  # type: ignore[attr-defined]
    mine.app.verify_cached = True
    statements = _count_connections(recorder)
    result = mine.app.change_contractor(cid, {**PERSON, "name": "Mine K.K."}, AT)
    assert (result.version, statements[0]) == (6, 2)  # events 4 and 5 with their head, then the write
    assert mine.app.change_contractor(cid, PERSON, AT).version == 7 and statements[0] == 4  # nothing newer, write
    assert verify_chain(other.app, cid).ok
    assert other.app.get_contract(cid).contractor == PERSON


def test_the_history_read_in_binary_gives_what_the_text_read_gives(services: Callable[..., Services]) -> None:
    """issue 21: the history read in the binary wire format (bytea as is, not hex text): the same
    events (bytes for bytes), the same chain head and the same keys, with a master key's wrap
    (``kek``, a text column) and the contacts key's derived id (a uuid column)."""
    master = base64.b64encode(os.urandom(32)).decode()
    writer = services(CONTRACTS_MASTER_KEY=master)
    cid = writer.app.open_contract("CUST-HIST", "kintone", "standard", 10, PERSON, AT,
                                   cycle=BillingCycle.MONTHLY).aggregate_id
    writer.app.approve(cid, AT)
    seen = []
    for binary in (False, True):
        cold = services(CONTRACTS_MASTER_KEY=master)
        recorder, keys = cold.app.recorder, cold.app.factory.keys  # type: ignore[attr-defined]
        recorder.history_binary = binary
        events = recorder.select_events(cid)
        assert [(e.originator_version, e.topic.rsplit(".", 1)[-1]) for e in events] == [
            (1, "Opened"), (2, "Applied"), (3, "Approved")]
        assert all(type(e.originator_version) is int and type(e.state) is bytes and e.originator_id == cid
                   for e in events)
        head = recorder.linker._heads[cid]  # remembered from the read: the version and hash of the last link
        assert head[0] == 3 and type(head[1]) is bytes and len(head[1]) == 32
        records, contacts = keys._cached(cid), keys._cached(key_id(cid, CONTACTS_KEY))
        assert type(records) is bytes and len(records) == 32 and type(contacts) is bytes and len(contacts) == 32
        assert records == writer.app.factory.keys.key_for_reading(cid)  # type: ignore[attr-defined]
        seen.append(([(e.originator_version, e.topic, e.state) for e in events], head, records, contacts))
        assert cold.app.get_contract(cid).contractor == PERSON
    assert seen[0] == seen[1]


def test_a_write_returns_its_notification_ids_in_order(services: Callable[..., Services]) -> None:
    """The one-statement write's ids (read as tuple rows, issue 21): consecutive, one per event."""
    s = services()
    recorder = s.app.recorder
    cid = s.app.open_contract("CUST-HIST", "kintone", "standard", 10, PERSON, AT,
                              cycle=BillingCycle.MONTHLY).aggregate_id
    first = s.app.approve(cid, AT).position
    second = s.app.change_contractor(cid, {**PERSON, "name": "Renamed K.K."}, AT).position
    assert type(first) is int and second == first + 1
    assert recorder.max_notification_id() == second
