"""Snapshot validity is the state's schema version (issue 13), and a snapshot is transcoded JSON
(issue 14): an edit of the domain's code that leaves the state's shape as it was keeps every
snapshot valid; a shape change without a new schema version fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from application.aggregate_state import (
    STATE_SCHEMA_VERSION,
    decode_state,
    encode_state,
    private_copy,
    restore,
    state_shape,
)
from application.service import ContractsApplication
from domain.calendar import Month
from domain.contract import BillingCycle, Contract
from infrastructure import snapshots as snap
from infrastructure.bootstrap import build_services
from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# The shape of schema version 1: if this fails, the contract's state changed shape. Raise
# STATE_SCHEMA_VERSION, add an upcaster from the old version to infrastructure.snapshots.UPCASTERS
# (or accept that old snapshots are replayed until retaken), and pin the new shape here.
# 2: issue 15; 3: rule book 7 settlement; 4: rule book 7 payment reminders; 5 (issue 16): invoices read
# from InvoiceIssued (number, issuer, rates, recipient, status, credits, interest); no upcaster from 4:
# a v4 state has no issued invoices to carry (replayed until retaken). 6: the shape of 5, but a void or a
# correction now gives back what the invoice billed by rule (Ledger._release): no upcaster (v5 replayed).
SHAPES = {1: "5d7b63f8af4b5c84", 2: "0d29d213c90bd287", 3: "48b07baaab923c8f", 4: "19fe906051efe182",
          5: "727def39b3ac21f1", 6: "727def39b3ac21f1"}
CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo", "contact_email": "a@example.invalid"}


def test_the_state_shape_is_the_one_of_its_schema_version() -> None:
    assert SHAPES[STATE_SCHEMA_VERSION] == state_shape()
    assert snap.SCHEMA_STAMP == f"contract-state-v{STATE_SCHEMA_VERSION}"


def test_a_comment_edit_in_the_domain_keeps_the_snapshot_schema(tmp_path: Path) -> None:
    """Before issue 13 snapshots carried a hash of every file in ``domain/``: one comment edit
    invalidated all of them. The stamp and the shape are computed here in a copy of the code whose
    domain has an extra comment in every module."""
    for folder in ("domain", "application", "infrastructure"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for module in (tmp_path / "domain").glob("*.py"):
        module.write_text(module.read_text() + "\n# an edited comment\n")
    probe = ("from infrastructure import snapshots as s; from application.aggregate_state import state_shape; "
             "print(s.SCHEMA_STAMP, state_shape(), s.__file__)")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
                         check=True, timeout=60).stdout.split()
    assert out[2].startswith(str(tmp_path))  # the edited copy was imported
    assert out[:2] == [snap.SCHEMA_STAMP, state_shape()]


def _lived_in_contract() -> tuple[ContractsApplication, Contract]:
    """A contract with invoices, payments, an overdue set and pending changes (popo store)."""
    from datetime import UTC, datetime

    services = build_services(Settings(database_url=None), env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app = services.app
    at = datetime(2026, 3, 24, 1, 0, tzinfo=UTC)
    cid = app.open_contract(f"CUST-{uuid.uuid4().hex[:8]}", "kintone", "standard", 10, CONTRACTOR, at,
                            cycle=BillingCycle.MONTHLY).aggregate_id
    app.approve(cid, at)
    app.advance(cid, Month(2026, 9))
    contract = app.get_contract(cid)
    invoice = next(iter(contract.ledger.invoices.values()))
    later = datetime(2026, 9, 2, 1, 0, tzinfo=UTC)
    app.record_payment(cid, invoice.invoice_id, 1000, invoice.due_on, later, reference="REF-1")
    app.request_change(cid, None, 12, None, later)
    return app, app.get_contract(cid)


def test_the_transcoded_state_restores_an_equal_contract() -> None:
    app, contract = _lived_in_contract()
    transcoder = app.mapper.transcoder
    data = encode_state(transcoder, contract)  # type: ignore[arg-type]
    assert data.startswith(b"{") and b"Example Trading" in data  # JSON (sealed as a whole by the store)
    restored = restore(Contract, decode_state(transcoder, data))  # type: ignore[arg-type]
    assert vars(restored) == vars(contract)
    assert restored.ledger.invoices == contract.ledger.invoices and restored.payment_references == {"REF-1"}
    copied = private_copy(contract)
    assert vars(copied) == vars(contract) and copied.ledger is not contract.ledger
    assert all(copied.ledger.invoices[i] is not v for i, v in contract.ledger.invoices.items())
