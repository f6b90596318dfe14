"""Fast generation of stored contracts: COPY of pre-encoded stored events, not commands.

A template contract's history is built once with the domain model (monthly ``kintone``
standard, 10 users: Opened, Applied, Approved, ServicePeriodStarted, then Renewed for each
further month). Its events are encoded once with the application's mapper; for every
generated contract only what differs is re-encoded: ``Opened`` (customer number) and
``Applied`` (the contractor, sealed with the contract's key as the service does: AES-GCM,
associated data naming the contract and version). All other events reuse the template's
bytes (their stored state holds no contract id). Every event gets its hash-chain link and
every contract its two key rows (records and contacts; one shared random key: benchmark data), so the service can
append to, read and verify generated contracts like any other. ``InvoiceIssued`` is re-encoded too (its
recipient is sealed): each contract gets its own invoice id and a benchmark number (rule book 6.1).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from application.audit import CONTACTS_KEY, GENESIS, PERSONAL_FIELDS, chain_hash, key_id
from domain.calendar import JST, Month
from domain.contract import BillingCycle, Contract

SERVICE, GRADE, USERS = "kintone", "standard", 10
CONTRACTOR = {"name": "Bench Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
              "contact_name": "Taro Bench", "contact_email": "taro@example.invalid"}
CONCLUDED_AT = datetime(2026, 1, 15, 10, 0, tzinfo=JST).astimezone(UTC)
FIRST_MONTH = Month(2026, 2)


def customer(i: int, cohort: str = "") -> str:
    return f"BENCH{cohort}-{i:08d}"


def contract_id(i: int, cohort: str = "") -> uuid.UUID:
    return Contract.create_id(customer(i, cohort), SERVICE)


def _own_invoice(event: Any, oid: uuid.UUID, tag: str) -> dict[str, Any]:
    """The template's issued invoice as contract ``oid``'s own (rule book 6.1): its id derived from
    that contract and the period, a number of its own (``BENCH-<tag>-<template number>``: benchmark
    data, outside the issuer's series) and the document hash recomputed."""
    from domain.billing import invoice_id
    from domain.invoicing import document_hash

    document = {**event.document, "contract_id": str(oid), "invoice_id": str(invoice_id(oid, event.document["period"])),
                "number": f"BENCH-{tag}-{event.document['number']}"}
    return {"invoice_id": uuid.UUID(document["invoice_id"]), "document": document,
            "document_hash": document_hash({**document, "recipient": event.recipient})}


class _SharedKey:
    """The key store as the mapper sees it while generating: one key for every contract."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def key_for_writing(self, contract_id: uuid.UUID) -> bytes:
        return self.key


def _clone(event: Any, **changes: Any) -> Any:
    clone = object.__new__(type(event))
    object.__setattr__(clone, "__dict__", {**vars(event), **changes})
    return clone


@dataclass
class Template:
    events: list[Any]  # domain events of the template contract
    stored_states: list[bytes | None]  # template bytes, or None where re-encoded per contract


class Generator:
    """Writes ``count`` contracts with ``months`` months of service each into the service's schema."""

    def __init__(self, app: Any, months: int = 1) -> None:
        from infrastructure.personal_data import PersonalDataMapper

        self.app = app
        self.months = months
        self.key = os.urandom(32)
        self.mapper = PersonalDataMapper(app.mapper.transcoder, keys=_SharedKey(self.key))  # type: ignore[arg-type]
        self.template = self._template()
        self.events_table = f'"{app.recorder.datastore.schema}"."{app.recorder.events_table_name}"'
        self.hashes_table = f'"{app.recorder.datastore.schema}"."{app.recorder.hashes_table_name}"'
        self.keys_table = app.recorder.keys.table

    @property
    def events_per_contract(self) -> int:
        return len(self.template.events)

    def _template(self) -> Template:
        app = self.app
        plan = app.catalog.plan(SERVICE, GRADE)
        contract = Contract.open(customer(0, "T"), SERVICE)
        contract.apply(plan, BillingCycle.MONTHLY, USERS, CONTRACTOR, CONCLUDED_AT)
        contract.approve(CONCLUDED_AT)
        contract.advance_to(FIRST_MONTH.plus(self.months - 1), app.policy, app.number_book())
        events = list(contract.collect_events())
        states: list[bytes | None] = []
        for e in events:
            per_contract = type(e).__name__ == "Opened" or self._topic(e) in PERSONAL_FIELDS
            states.append(None if per_contract else self.mapper.to_stored_event(e).state)
        return Template(events, states)

    @staticmethod
    def _topic(event: Any) -> str:
        from eventsourcing.utils import get_topic

        return get_topic(type(event))

    def stored(self, i: int, cohort: str = "") -> Iterator[tuple[uuid.UUID, int, str, bytes]]:
        oid = contract_id(i, cohort)
        for e, state in zip(self.template.events, self.template.stored_states, strict=True):
            if state is None:
                changes: dict[str, Any] = {"originator_id": oid}
                if type(e).__name__ == "Opened":
                    changes["customer_number"] = customer(i, cohort)
                elif type(e).__name__ == "InvoiceIssued":
                    changes.update(_own_invoice(e, oid, f"{cohort}{i:08d}"))
                s = self.mapper.to_stored_event(_clone(e, **changes))
                yield oid, e.originator_version, s.topic, s.state
            else:
                yield oid, e.originator_version, self._topic(e), state

    def write(self, dsn: str, count: int, start: int = 0, cohort: str = "", chunk: int = 20_000) -> int:
        """COPY ``count`` contracts (events, chain hashes, keys); returns the number of events."""
        written = 0
        with psycopg.connect(dsn) as conn:
            for lo in range(start, start + count, chunk):
                hi = min(start + count, lo + chunk)
                events: list[tuple[uuid.UUID, int, str, bytes]] = []
                hashes: list[tuple[uuid.UUID, int, bytes]] = []
                for i in range(lo, hi):
                    prev = GENESIS
                    for oid, version, topic, state in self.stored(i, cohort):
                        events.append((oid, version, topic, state))
                        prev = chain_hash(prev, oid, version, topic, state)
                        hashes.append((oid, version, prev))
                with conn.cursor() as cur:
                    with cur.copy(f"COPY {self.events_table} (originator_id, originator_version, topic, state) "
                                  "FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(["uuid", "int8", "text", "bytea"])
                        for row in events:
                            copy.write_row(row)
                    with cur.copy(f"COPY {self.hashes_table} (originator_id, originator_version, hash) "
                                  "FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(["uuid", "int8", "bytea"])
                        for link in hashes:
                            copy.write_row(link)
                    with cur.copy(f"COPY {self.keys_table} (contract_id, key, created_at) "
                                  "FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(["uuid", "bytea", "timestamptz"])
                        now = datetime.now(UTC)
                        for i in range(lo, hi):  # the records key and the contacts key (issue 15)
                            copy.write_row((contract_id(i, cohort), self.key, now))
                            copy.write_row((key_id(contract_id(i, cohort), CONTACTS_KEY), self.key, now))
                conn.commit()
                written += len(events)
        return written


def analyze(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
