"""Issue 7: snapshots for as-of reads are sealed with the contract's key, give the same state as
a full replay, and fall back to replaying when unreadable (shredded key, tampered row, old code)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from infrastructure import snapshots as snap
from infrastructure.bootstrap import Services, build_read_models, build_services
from infrastructure.settings import Settings

pytestmark = pytest.mark.postgres
PERSON = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo", "contact_name": "Hanako Sample",
          "contact_email": "hanako@example.invalid"}


@pytest.fixture
def services(fresh_pg_env: dict[str, str]) -> Iterator[Services]:
    made = build_services(Settings(database_url=None), env=dict(fresh_pg_env))
    yield made
    made.close()


def _contract(services: Services, changes: int) -> uuid.UUID:
    app = services.app
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    cid = app.open_contract("CUST-SNAP", "kintone", "standard", 10, PERSON, at, trial=True).aggregate_id
    for n in range(changes):
        app.change_contractor(cid, {**PERSON, "contact_name": f"Contact {n}"}, at + timedelta(minutes=n))
    return cid


def _dsn(services: Services) -> tuple[str, str]:
    env = services.app.env
    dsn = psycopg.conninfo.make_conninfo(dbname=env.get("POSTGRES_DBNAME"), host=env.get("POSTGRES_HOST"),
                                         port=env.get("POSTGRES_PORT"), user=env.get("POSTGRES_USER"),
                                         password=env.get("POSTGRES_PASSWORD") or "")
    return dsn, str(env.get("POSTGRES_SCHEMA"))


def test_snapshots_give_the_same_states_as_a_full_replay(services: Services) -> None:
    cid = _contract(services, 120)
    assert snap.take_snapshots(services.app, [cid], every=25) == 4  # versions 25, 50, 75, 100
    assert snap.take_snapshots(services.app, [cid], every=25) == 0  # idempotent
    store = snap.open_snapshots(services.app)
    assert store is not None
    for version in (1, 24, 25, 26, 60, 100, 122):
        restored = store.get_contract(cid, version)
        replayed = services.app.get_contract(cid, version=version)
        assert restored is not None and restored.version == version
        assert restored.contractor == replayed.contractor and restored.state == replayed.state
    assert store.get(cid, lte=24) == [] and store.get(cid, lte=60)[0].originator_version == 50
    models = build_read_models(services)
    models.runner.catch_up()
    assert models.snapshots is not None
    latest = models.contract_as_of(cid, position=10**9)
    assert latest is not None and latest.contractor["contact_name"] == "Contact 119"


def test_snapshots_store_no_personal_data_in_clear(services: Services) -> None:
    cid = _contract(services, 60)
    snap.take_snapshots(services.app, [cid], every=25)
    store = snap.open_snapshots(services.app)
    assert store is not None
    dsn, schema = _dsn(services)
    with psycopg.connect(dsn, autocommit=True) as conn:
        states = [bytes(r[0]) for r in conn.execute(f'SELECT state FROM "{schema}".contracts_snapshots')]
        assert len(states) == 2 and all(b"Hanako" not in s and b"Example Trading" not in s for s in states)
    assert store.get(cid, lte=55)[0].originator_version == 50


def test_a_tampered_or_stale_snapshot_is_replayed_instead(services: Services) -> None:
    cid = _contract(services, 60)
    snap.take_snapshots(services.app, [cid], every=25)
    store = snap.open_snapshots(services.app)
    assert store is not None
    dsn, schema = _dsn(services)
    with psycopg.connect(dsn, autocommit=True) as conn:
        changed = conn.execute(f'UPDATE "{schema}".contracts_snapshots '
                               "SET state = set_byte(state, 40, (get_byte(state, 40) + 1) % 256) "
                               "WHERE originator_version = 50").rowcount
        assert changed == 1
    assert store.get(cid, lte=55) == []
    replayed = store.get_contract(cid, 55)
    assert replayed is not None and replayed.version == 55
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'UPDATE "{schema}".contracts_snapshots SET fingerprint = %s', ("older-domain-code",))
    assert store.get(cid, lte=30) == []


def test_a_shredded_contract_is_replayed_with_its_personal_data_erased(services: Services) -> None:
    cid = _contract(services, 30)
    snap.take_snapshots(services.app, [cid], every=25)
    store = snap.open_snapshots(services.app)
    assert store is not None and store.get(cid, lte=30)
    services.app.factory.keys.destroy([cid])  # type: ignore[attr-defined]
    assert store.get(cid, lte=30) == []
    contract = store.get_contract(cid, 30)
    assert contract is not None and contract.contractor == {"erased": "true"}


def test_privacy_policy_7_contacts_erased_are_not_read_back_from_an_older_snapshot(services: Services) -> None:
    """A snapshot taken before an erasure request holds the contacts under the records key: once the
    contacts key is destroyed the snapshot is not used, and the replay reads the contacts as erased."""
    cid = _contract(services, 30)
    snap.take_snapshots(services.app, [cid], every=25)
    store = snap.open_snapshots(services.app)
    assert store is not None and store.get(cid, lte=30)
    services.app.answer_privacy_request(cid, "erase", datetime(2026, 3, 3, 1, 0, tzinfo=UTC))
    assert store.get(cid, lte=30) == []
    contract = store.get_contract(cid, 30)
    assert contract is not None
    assert contract.contractor == {"name": PERSON["name"], "address": PERSON["address"], "contacts": "[erased]"}


def test_as_of_an_instant_is_one_query_and_equals_the_version_lookup_and_a_full_replay(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Auditors' as-of by recorded time (issue 7): the version lookup, the snapshot and the events
    after it come back in one query, with the same result as looking the version up first."""
    cid = _contract(services, 60)  # versions 1..62 (opened, trial started, 60 changes)
    snap.take_snapshots(services.app, [cid], every=25)
    models = build_read_models(services)
    models.runner.catch_up()
    store = models.snapshots
    assert store is not None
    recorded = [e.timestamp for e in services.app.events.get(cid)]
    instants = [(recorded[0] - timedelta(seconds=1), 0), (recorded[0], 1), (recorded[24], 25),
                (recorded[54] + (recorded[55] - recorded[54]) / 2, 55), (recorded[-1], 62),
                (recorded[-1] + timedelta(days=1), 62)]
    expected = {}
    for at, version in instants:
        assert models.version_at(cid, at) == version
        models.snapshots = None
        expected[at] = models.contract_as_of(cid, at=at)  # version lookup + full replay
        models.snapshots = store
    monkeypatch.setattr(models.store, "version_at", lambda *a: pytest.fail("a second query was made"))
    for at, version in instants:
        got = models.contract_as_of(cid, at=at)
        if version == 0:
            assert got is None and expected[at] is None  # it did not exist yet
            continue
        want = expected[at]
        assert got is not None and want is not None
        assert (got.version, got.contractor, got.state) == (want.version, want.contractor, want.state) == (
            version, want.contractor, want.state)
    dsn, schema = _dsn(services)  # an unreadable snapshot: the same instant is replayed from the events
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'UPDATE "{schema}".contracts_snapshots SET state = set_byte(state, 40, '
                     "(get_byte(state, 40) + 1) % 256) WHERE originator_version = 50")
    at = instants[3][0]
    replayed = models.contract_as_of(cid, at=at)
    assert replayed is not None and replayed.version == 55 and replayed.contractor == PERSON | {
        "contact_name": "Contact 52"}


def test_an_opened_snapshot_is_decoded_once_and_each_read_gets_its_own_copy(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21 (target 5): a snapshot opened once is kept decoded in the process; later reads of
    the same row get a private copy of it (same state as a full replay), never the kept object."""
    cid = _contract(services, 60)  # versions 1..62
    snap.take_snapshots(services.app, [cid], every=25)  # 25, 50
    store = snap.open_snapshots(services.app)
    assert store is not None
    first = store.get_contract(cid, 55)
    assert first is not None and len(store.opened) == 1
    monkeypatch.setattr(snap, "decode_state", lambda *a: pytest.fail("the snapshot was decoded again"))
    first.contractor["contact_name"] = "changed by a caller"  # a caller's changes stay its own
    first.pending_changes.append("a caller's list")
    for version in (50, 51, 55, 60):
        got = store.get_contract(cid, version)
        replayed = services.app.get_contract(cid, version=version)
        assert got is not None and got is not first
        assert (got.version, got.contractor, got.pending_changes, got.state) == (
            version, PERSON | {"contact_name": f"Contact {version - 3}"}, [], replayed.state)
        assert got.contractor == replayed.contractor and got.contractor["contact_name"] == f"Contact {version - 3}"
    assert len(store.opened) == 1


def test_a_row_changed_after_it_was_opened_is_opened_again(services: Services) -> None:
    """The kept state is used only for the very row it was opened from: a tampered row (its bytes
    changed) is not authenticated from memory, it is replayed; a retaken row is decoded anew."""
    cid = _contract(services, 60)
    snap.take_snapshots(services.app, [cid], every=25)
    store = snap.open_snapshots(services.app)
    assert store is not None and store.get(cid, lte=55)[0].originator_version == 50
    dsn, schema = _dsn(services)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'UPDATE "{schema}".contracts_snapshots SET state = set_byte(state, 40, '
                     "(get_byte(state, 40) + 1) % 256) WHERE originator_version = 50")
    assert store.get(cid, lte=55) == []  # does not authenticate: not served from memory
    contract = services.app.get_contract(cid, version=50)
    assert store.put(contract)  # retaken: new nonce, new bytes
    got = store.get(cid, lte=55)
    assert len(got) == 1 and got[0].aggregate.contractor == PERSON | {"contact_name": "Contact 47"}


def test_opened_snapshots_are_bounded_by_size_least_recently_used_first() -> None:
    kept = snap.OpenedSnapshots(budget=100)
    a, b, c = (uuid.UUID(int=n) for n in (1, 2, 3))
    contract = snap.Contract.open("SIZE", "kintone")  # type: ignore[attr-defined]
    kept.put(a, 10, "s", b"A", b"k", 40, contract)
    kept.put(b, 10, "s", b"B", b"k", 40, contract)
    assert kept.get(a, 10, "s", b"A", b"k") is not None  # a is now the most recently used
    kept.put(c, 10, "s", b"C", b"k", 40, contract)  # 120 > 100: b goes
    assert (len(kept), kept.size) == (2, 80)
    assert kept.get(b, 10, "s", b"B", b"k") is None and kept.get(c, 10, "s", b"C", b"k") is not None
    kept.put(a, 20, "s", b"A", b"k", 101, contract)  # larger than the whole budget: not kept
    assert (len(kept), kept.size) == (2, 80)
    assert kept.get(a, 10, "s", b"A", b"other key") is None and kept.get(a, 10, "t", b"A", b"k") is None
    copy = kept.get(a, 10, "s", b"A", b"k")
    assert copy is not None and copy is not contract and copy.customer_number == "SIZE"


@pytest.mark.parametrize("erase", ["key", "contacts"])
def test_an_opened_snapshot_is_not_kept_in_memory_once_its_personal_data_is_erased(
        services: Services, erase: str) -> None:
    """Crypto-shredding (rule book 10): once the contract's key (or its contacts key, privacy policy
    7) is destroyed, the decoded snapshots it opened, which hold the personal data in clear, are
    dropped from the process at the next read, not only refused."""
    cid = _contract(services, 60)
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    other = services.app.open_contract("CUST-OTHER", "kintone", "standard", 10, PERSON, at, trial=True).aggregate_id
    for n in range(28):
        services.app.change_contractor(other, {**PERSON, "contact_name": f"Other {n}"}, at + timedelta(minutes=n))
    snap.take_snapshots(services.app, [cid, other], every=25)
    store = snap.open_snapshots(services.app)
    assert store is not None
    assert store.get_contract(cid, 30) is not None and store.get_contract(cid, 55) is not None
    assert store.get_contract(other, 30) is not None
    assert len(store.opened) == 3  # cid at 25 and 50, other at 25
    if erase == "key":
        services.app.factory.keys.destroy([cid])  # type: ignore[attr-defined]
    else:
        services.app.answer_privacy_request(cid, "erase", datetime(2026, 3, 3, 1, 0, tzinfo=UTC))
    assert store.get(cid, lte=55) == []
    assert (len(store.opened), store.opened.versions(cid), store.opened.versions(other)) == (1, [], [25])
    assert store.get_contract(cid, 55) is not None and len(store.opened) == 1  # replayed: nothing kept
