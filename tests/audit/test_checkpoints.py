"""Spec 13 (issue 14 item 5): tamper evidence that does not depend on the database alone.

Each attack is one an attacker with write access to the database can make so that
``verify_chain`` still passes (the chain is recomputed, or the change is not to any one
aggregate's chain); a checkpoint signed with a key kept outside the database detects it.
Same tests on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import copy
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from audit_kit import Store, jst, run_lifecycle

from application.audit import GENESIS, chain_hash, verify_chain
from application.checkpoints import (
    CheckpointError,
    check_signature,
    make_checkpoint,
    verify_against,
)
from domain.sla import OutageCause
from infrastructure.checkpoint_keys import Ed25519Signer, Ed25519Verifier, new_private_key

NOW = datetime(2026, 9, 1, tzinfo=UTC)


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def latest(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.documents[-1]) if self.documents else None

    def add(self, document: dict[str, Any]) -> None:
        self.documents.append(copy.deepcopy(document))


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(new_private_key())


def _position_column(store: Store) -> str:
    return "rowid" if store.backend == "sqlite" else "notification_id"


def _checkpoint(store: Store, signer: Ed25519Signer, kept: MemoryCheckpoints | None = None) -> dict[str, Any]:
    return make_checkpoint(store.app.recorder, kept or MemoryCheckpoints(), signer, "test", NOW, signer)  # type: ignore[arg-type]


def _verify(store: Store, document: dict[str, Any], signer: Ed25519Signer) -> Any:
    return verify_against(store.app.recorder, document, Ed25519Verifier(signer.public_key))  # type: ignore[arg-type]


def _rows(store: Store, cid: uuid.UUID) -> list[Any]:
    return list(store.app.recorder.chain_rows(cid, None, 10_000))  # type: ignore[attr-defined]


def _rewrite_with_recomputed_hashes(store: Store, cid: uuid.UUID, version: int, old: bytes, new: bytes) -> None:
    """Edit one event and recompute every later hash of the aggregate: the chain stays valid."""
    prev = GENESIS
    for row in _rows(store, cid):
        state = row.state
        if row.version == version:
            state = state.replace(old, new)
            assert state != row.state
            store.execute(f"UPDATE {store.events_table} SET state = %s WHERE originator_id = %s "
                          "AND originator_version = %s", (state, cid, row.version))
        digest = chain_hash(prev, cid, row.version, row.topic, state)
        if row.version >= version:
            store.execute(f"UPDATE {store.hashes_table} SET hash = %s WHERE originator_id = %s "
                          "AND originator_version = %s", (digest, cid, row.version))
        prev = digest


def test_spec_13_a_checkpoint_of_an_untouched_store_verifies(store: Store, signer: Ed25519Signer) -> None:
    run = run_lifecycle(store.app)
    document = _checkpoint(store, signer)
    last = store.app.recorder.max_notification_id()
    stored = store.app.recorder.select_notifications(start=1, limit=10_000)
    # PostgreSQL leaves gaps in the positions (refused commands use up sequence values)
    assert document["position"] == last and document["events"] == len(stored)
    assert document["heads"][str(run.contract_id)][0] == store.app.get_contract(run.contract_id).version
    report = _verify(store, document, signer)
    assert report.ok and report.differences == [] and report.after_checkpoint == 0
    # events stored later are not covered, and said so
    store.app.record_outage("garoon", jst(2026, 8, 1), jst(2026, 8, 2), OutageCause.PROVIDER_NETWORK, jst(2026, 8, 3))
    later = _verify(store, document, signer)
    assert later.ok and later.after_checkpoint == 3  # OutageRecorded, OutageLogOpened, OutageListed


def test_spec_13_an_amount_edited_with_recomputed_hashes_is_detected(store: Store, signer: Ed25519Signer) -> None:
    run = run_lifecycle(store.app)
    document = _checkpoint(store, signer)
    payment = next(r for r in _rows(store, run.contract_id) if r.topic.endswith("PaymentReceived"))
    _rewrite_with_recomputed_hashes(store, run.contract_id, payment.version, b'"amount":24200', b'"amount":2420')
    assert verify_chain(store.app).ok  # the attack defeats the chain alone
    report = _verify(store, document, signer)
    assert not report.ok
    assert [(d.kind, d.aggregate_id) for d in report.differences if d.aggregate_id] == [("edited", run.contract_id)]


def test_spec_13_deleted_newest_events_are_detected(store: Store, signer: Ed25519Signer) -> None:
    run = run_lifecycle(store.app)
    document = _checkpoint(store, signer)
    last = store.app.get_contract(run.contract_id).version
    for version in (last, last - 1):  # the newest two events and their hashes: a shorter, valid chain
        for table in (store.events_table, store.hashes_table):
            store.execute(f"DELETE FROM {table} WHERE originator_id = %s AND originator_version = %s",
                          (run.contract_id, version))
    assert verify_chain(store.app).ok
    report = _verify(store, document, signer)
    assert not report.ok
    kinds = {d.kind for d in report.differences}
    assert "truncated" in kinds
    assert any(d.aggregate_id == run.contract_id and f"version {last}" in d.reason for d in report.differences)


def test_spec_13_a_deleted_contract_is_detected(store: Store, signer: Ed25519Signer) -> None:
    run = run_lifecycle(store.app)
    document = _checkpoint(store, signer)
    for table in (store.events_table, store.hashes_table):
        store.execute(f"DELETE FROM {table} WHERE originator_id = %s", (run.contract_id,))
    assert verify_chain(store.app).ok
    report = _verify(store, document, signer)
    assert not report.ok
    assert ("deleted", run.contract_id) in [(d.kind, d.aggregate_id) for d in report.differences]


def test_spec_13_two_events_with_their_global_order_swapped_are_detected(store: Store, signer: Ed25519Signer) -> None:
    run = run_lifecycle(store.app)
    document = _checkpoint(store, signer)
    column = _position_column(store)
    # the outage's creation and the contract event before it swap positions: every chain is intact
    outage_pos = next(r.position for r in _rows(store, run.outage_id))
    before = outage_pos - 1
    for a, b in ((outage_pos, -1), (before, outage_pos), (-1, before)):
        store.execute(f"UPDATE {store.events_table} SET {column} = %s WHERE {column} = %s", (b, a))
    assert verify_chain(store.app).ok
    report = _verify(store, document, signer)
    assert not report.ok
    assert [d.kind for d in report.differences] == ["reordered"]
    first, last = report.differences[0].positions
    assert first <= before < outage_pos <= last


def test_spec_13_an_altered_or_foreign_checkpoint_is_refused(store: Store, signer: Ed25519Signer) -> None:
    run_lifecycle(store.app)
    document = _checkpoint(store, signer)
    trusted = Ed25519Verifier(signer.public_key)
    altered = {**document, "position": document["position"] - 3}
    with pytest.raises(CheckpointError, match="does not verify"):
        check_signature(altered, trusted)
    # a checkpoint signed by another key (the attacker's) names that key inside: it does not matter
    forged = _checkpoint(store, Ed25519Signer(new_private_key()))
    with pytest.raises(CheckpointError, match="does not verify"):
        check_signature(forged, trusted)
    with pytest.raises(CheckpointError, match="base64"):
        check_signature({**document, "signature": "not base64!"}, trusted)
    assert base64.b64decode(document["signature"])  # the genuine one is fine
    check_signature(document, trusted)


def test_spec_13_no_new_checkpoint_is_signed_over_a_tampered_store(store: Store, signer: Ed25519Signer) -> None:
    run = run_lifecycle(store.app)
    kept = MemoryCheckpoints()
    first = _checkpoint(store, signer, kept)
    store.app.record_outage("garoon", jst(2026, 8, 1), jst(2026, 8, 2), OutageCause.PROVIDER_NETWORK, jst(2026, 8, 3))
    second = _checkpoint(store, signer, kept)
    assert (second["sequence"], second["position"]) == (2, first["position"] + 3)
    assert second["previous"] is not None and _verify(store, second, signer).ok
    for table in (store.events_table, store.hashes_table):
        store.execute(f"DELETE FROM {table} WHERE originator_id = %s", (run.contract_id,))
    with pytest.raises(CheckpointError, match="no longer matches checkpoint 2"):
        _checkpoint(store, signer, kept)
    assert len(kept.documents) == 2
