"""Personal data and audit (spec 10, issue 6): what is personal, the hash chain, verify,
export, offline replay and the disclosure document.

Everything here is storage-neutral. The storage side (per-contract keys, the mapper that
seals personal fields, the recorders that write the chain) lives in
``infrastructure.personal_data`` and ``infrastructure.persistence``; it imports the
definitions below so that the writer, the verifier and an auditor's offline replay share
one definition of "personal field" and one hash function.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic

from application.actors import ACTOR_FIELD
from application.ports import ChainRow, ChainStore
from application.service import ContractsApplication
from application.transcodings import FastJSONTranscoder, register_all
from application.undecodable import UndecodableEvent, decode_event
from domain.calendar import jst_date
from domain.contract import Contract, ContractEvents
from domain.errors import InvalidInput, NotFound
from domain.personal_data import PERSONAL_FIELDS as _PERSONAL_FIELDS
from domain.personal_data import erased_value, redacted_value
from domain.policy import Policy
from domain.settlement import Transfer
from domain.values import DATE, MONTH, UTC_INSTANT, UUID

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- personal fields


PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {get_topic(cls): names for cls, names in _PERSONAL_FIELDS.items()}
"""Event topic -> attributes holding personal data (``domain.personal_data.PERSONAL_FIELDS``).
They are stored sealed with the contract's key; the rest of each event stays in clear."""

SPLIT_FIELDS: frozenset[str] = frozenset({"contractor"})
"""Personal fields sealed in two parts, each under its own key: ``records`` (what the invoice
records need: ``domain.retention.RECORD_FIELDS``) and ``contacts`` (everything else), so the
contacts can be erased on request while the recipient's name is kept (privacy policy 7)."""

RECORDS_KEY, CONTACTS_KEY = "records", "contacts"

SHREDS: dict[str, tuple[str, ...]] = {
    get_topic(ContractEvents.ContractorDataErased): (RECORDS_KEY, CONTACTS_KEY),
    get_topic(ContractEvents.DataDeleted): (RECORDS_KEY, CONTACTS_KEY),  # stores written before issue 15
    get_topic(ContractEvents.PrivacyRequestAnswered): (CONTACTS_KEY,),
    get_topic(vars(Transfer)["PayerDataErased"]): (RECORDS_KEY,),  # the transfer's one key (spec 10)
}
"""Storing one of these events destroys the named keys of its aggregate (a contract, a transfer) in
the same transaction."""

CONTACTS_KEY_NAMESPACE = uuid.UUID("9a4f2c1e-6b3d-4e8a-a5f7-2d9c0b1e3f64")


def key_id(contract_id: uuid.UUID, part: str) -> uuid.UUID:
    """The key-store id of one of a contract's keys: the contract id itself for the records key (the
    one key of stores written before issue 15), a derived id for the contacts key."""
    return contract_id if part == RECORDS_KEY else _contacts_key_id(contract_id)


@functools.lru_cache(maxsize=256)  # a command derives it ~5 times within itself: a few entries do;
# 65,536 held ~26 MB per process once a month start had touched that many contracts (memory not flat)
def _contacts_key_id(contract_id: uuid.UUID) -> uuid.UUID:
    """Remembered (issue 21): a command derives it ~5 times (seal, the history read's key rows, each
    sealed event opened), ~4 us each in ``uuid5``."""
    return uuid.uuid5(CONTACTS_KEY_NAMESPACE, str(contract_id))


OPENED_TOPIC = get_topic(ContractEvents.Opened)


@dataclass(frozen=True)
class Sealed:
    """A personal field as stored: AES-GCM ciphertext under the contract's key ``kid``.
    ``data`` is base64 of nonce (12 bytes) + ciphertext + tag."""

    kid: str
    data: str


def is_sealed(value: Any) -> bool:
    """A stored personal field: one ``Sealed`` envelope, or a dict of them (a split field)."""
    return isinstance(value, Sealed) or (isinstance(value, dict) and bool(value)
                                         and all(isinstance(v, Sealed) for v in value.values()))


class SealedAsDict(Transcoding):
    type = Sealed
    name = "sealed"

    def encode(self, obj: Sealed) -> dict[str, str]:
        return {"kid": obj.kid, "enc": obj.data}

    def decode(self, data: dict[str, str]) -> Sealed:
        return Sealed(data["kid"], data["enc"])


def offline_transcoder() -> JSONTranscoder:
    """The application's transcoder, built without an application (for offline replay)."""
    transcoder = FastJSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), SealedAsDict()):
        transcoder.register(transcoding)
    register_all(transcoder)
    return transcoder


# --------------------------------------------------------------------------- hash chain

GENESIS = bytes(32)


def chain_hash(prev: bytes, originator_id: uuid.UUID | str, version: int, topic: str, state: bytes) -> bytes:
    """sha256(prev || len+id || version || len+topic || stored state) over the stored (sealed)
    bytes, so destroying a key never breaks the chain. Length prefixes keep it unambiguous."""
    oid = str(originator_id).encode()
    top = topic.encode()
    h = hashlib.sha256(prev)
    h.update(len(oid).to_bytes(2, "big"))
    h.update(oid)
    h.update(version.to_bytes(8, "big"))
    h.update(len(top).to_bytes(4, "big"))
    h.update(top)
    h.update(state)
    return h.digest()


@dataclass(frozen=True)
class Break:
    aggregate_id: uuid.UUID
    version: int
    reason: str
    position: int | None = None  # of the stored event, where there is one

    def to_dict(self) -> dict[str, Any]:
        return {"aggregate_id": str(self.aggregate_id), "version": self.version, "reason": self.reason,
                "position": self.position}


@dataclass
class VerifyReport:
    """``first_broken`` names the first broken link (aggregate, version, reason); ``broken``
    lists every broken link (each link is checked on its own). ``head`` is the last hash of the
    chain (one aggregate) or a digest of every chain head (whole store): record it
    elsewhere to detect a later rewrite of the whole chain or a truncated tail."""

    ok: bool
    checked: int
    aggregates: int
    first_broken: Break | None = None
    broken: list[Break] = field(default_factory=list)
    head: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "aggregates": self.aggregates,
            "first_broken": self.first_broken.to_dict() if self.first_broken else None,
            "broken": [b.to_dict() for b in self.broken],
            "head": self.head,
        }


_PAGE = 1000


def _chain_store(app: ContractsApplication) -> ChainStore:
    recorder = app.recorder
    if not isinstance(recorder, ChainStore):
        raise InvalidInput("rule book 10", f"the store ({type(recorder).__name__}) keeps no hash chain; "
                           "build the application through infrastructure.bootstrap", None)
    return recorder


def verify_chain(app: ContractsApplication, contract_id: uuid.UUID | None = None,
                 max_breaks: int = 100, *, decode: bool = True) -> VerifyReport:
    """Recompute every hash from the stored rows (one aggregate, or the whole store), and decode
    every event: one that does not decode is a broken link named with its position (issue 14).
    ``decode=False``: the hashes only (tests of the chain with synthetic events)."""
    store = _chain_store(app)
    # the keys of a page's sealed events in one query
    prefetch = getattr(app.mapper, "prefetch", None) if decode else None

    def rows() -> Iterator[ChainRow]:
        after: tuple[uuid.UUID, int] | None = None
        while True:
            page = store.chain_rows(contract_id, after, _PAGE)
            if prefetch is not None:
                prefetch([row.stored_event() for row in page])
            yield from page
            if len(page) < _PAGE:
                return
            after = (page[-1].originator_id, page[-1].version)

    report = VerifyReport(ok=True, checked=0, aggregates=0)
    found: dict[tuple[uuid.UUID, int], str] = {}
    positions: dict[tuple[uuid.UUID, int], int] = {}
    heads = hashlib.sha256()
    current: uuid.UUID | None = None
    # after a bad link both the recomputed and the recorded hash may be the true previous link
    # (an altered event, or an altered hash row): the next link is checked against either
    prevs: tuple[bytes, ...] = (GENESIS,)
    expected, prev = 1, GENESIS

    def close_chain() -> None:
        if current is not None:
            heads.update(f"{current}:{expected - 1}:".encode() + prev)

    for row in rows():
        if row.originator_id != current:
            close_chain()
            current, prevs, expected = row.originator_id, (GENESIS,), 1
            report.aggregates += 1
        report.checked += 1
        positions[(row.originator_id, row.version)] = row.position
        undecodable = _undecodable(app, row) if decode else None
        if undecodable is not None:
            found[(row.originator_id, row.version)] = undecodable
        if row.version != expected:  # the link into this row cannot be checked
            found.setdefault((row.originator_id, expected),
                             f"version {expected} is missing (next stored version is {row.version})")
            prev = row.hash or GENESIS
            prevs, expected = (prev,), row.version + 1
            continue
        computed = [chain_hash(p, row.originator_id, row.version, row.topic, row.state) for p in prevs]
        if row.hash is not None and row.hash in computed:
            prev = row.hash
            prevs = (prev,)
        else:
            found[(row.originator_id, row.version)] = (
                "no chain hash recorded for this event" if row.hash is None
                else "stored event does not match its chain hash (the event or its hash was altered)"
            ) + (f"; {undecodable}" if undecodable is not None else "")
            prev = computed[0]
            prevs = (prev,) if row.hash is None else (prev, row.hash)
        expected += 1
    close_chain()
    for oid, version in store.orphan_hashes(contract_id, max_breaks):
        found.setdefault((oid, version), "a chain hash is recorded for an event that is no longer stored "
                                         "(event deleted)")
    report.broken = [Break(oid, version, reason, positions.get((oid, version))) for (oid, version), reason
                     in sorted(found.items(), key=lambda item: (str(item[0][0]), item[0][1]))][:max_breaks]
    if contract_id is not None and report.aggregates == 0 and not report.broken:
        raise NotFound("rule book 3", f"no contract {contract_id}", "contract_id")
    report.ok = not report.broken
    report.first_broken = report.broken[0] if report.broken else None
    report.head = prev.hex() if contract_id is not None else heads.hexdigest()
    scope = f"contract {contract_id}" if contract_id is not None else "store"
    if report.first_broken is None:
        logger.info("hash chain of %s verified: %d events in %d chains", scope, report.checked, report.aggregates)
    else:
        b = report.first_broken
        logger.warning("hash chain of %s BROKEN at %s version %d: %s (%d broken links)", scope, b.aggregate_id,
                       b.version, b.reason, len(report.broken))
    return report


def _undecodable(app: ContractsApplication, row: ChainRow) -> str | None:
    """Why the stored event does not decode (None: it decodes)."""
    try:
        decode_event(app.mapper, row.stored_event(), position=row.position)
    except UndecodableEvent as exc:
        return f"stored event cannot be decoded: {exc.reason}"
    return None


# --------------------------------------------------------------------------- export


_PLAIN_FORMS: dict[str, Any] = {  # the library's own forms, written as the API writes them (issue 19)
    "uuid_hex": lambda text: UUID.encode(uuid.UUID(text)),  # dashed, not 32 hex digits
    "datetime_iso": lambda text: UTC_INSTANT.encode(datetime.fromisoformat(text)),  # UTC "Z", not "+00:00"
}


def plain(data: Any) -> Any:
    """The transcoder's JSON with its typed wrappers ({"_type_", "_data_"}) unwrapped:
    dates, datetimes, Decimals, months and UUIDs as strings, enums as values; ids dashed and
    instants in UTC with ``Z``, as every API answer writes them (the exact stored bytes are the
    export's ``stored``)."""
    if isinstance(data, dict):
        if len(data) == 2 and "_type_" in data and "_data_" in data:
            form = _PLAIN_FORMS.get(data["_type_"])
            if form is not None and isinstance(data["_data_"], str):
                return form(data["_data_"])
            return plain(data["_data_"])
        return {k: plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


def _event_state(event: object) -> dict[str, Any]:
    state = dict(vars(event))
    state.pop("originator_id", None)
    state.pop("originator_version", None)
    return state


def export_record(app: ContractsApplication, row: ChainRow, redact: bool = False) -> dict[str, Any]:
    """One JSON Lines record: the event as read (personal fields decrypted, erased or redacted)
    in ``payload``, and the exact stored bytes in ``stored`` for the chain and for replay."""
    transcoder = app.mapper.transcoder
    sealed = ([k for k, v in transcoder.decode(row.state).items() if is_sealed(v)]
              if row.topic in PERSONAL_FIELDS else [])
    state = _event_state(app.mapper.to_domain_event(row.stored_event()))
    for name in sealed:
        if redact:
            state[name] = redacted_value(name)
    payload = plain(json.loads(transcoder.encode(state)))
    return {
        "position": row.position,
        "aggregate_id": str(row.originator_id),
        "version": row.version,
        "event": row.topic.rsplit(".", 1)[-1],
        "topic": row.topic,
        "recorded_at": payload.get("timestamp"),
        "actor": payload.get(ACTOR_FIELD),  # section 13 (None: stored before actors were recorded)
        "payload": payload,
        "sealed": sealed,
        "stored": row.state.decode("utf-8"),
        "hash": row.hash.hex() if row.hash is not None else None,
    }


def export_records(app: ContractsApplication, contract_id: uuid.UUID | None = None,
                   redact: bool = False) -> Iterator[dict[str, Any]]:
    """One contract's history (by version) or the whole store's (by position)."""
    store = _chain_store(app)
    if contract_id is not None:
        app.get_contract(contract_id)  # NotFound if there is no such contract
        after: tuple[uuid.UUID, int] | None = None
        while True:
            page = store.chain_rows(contract_id, after, _PAGE)
            for row in page:
                yield export_record(app, row, redact)
            if len(page) < _PAGE:
                return
            after = (page[-1].originator_id, page[-1].version)
    position = 0
    while True:
        page = store.log_rows(position, _PAGE)
        for row in page:
            yield export_record(app, row, redact)
        if len(page) < _PAGE:
            return
        position = page[-1].position


def write_jsonl(records: Iterable[Mapping[str, Any]], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


# --------------------------------------------------------------------------- offline replay


@dataclass
class _Replayed:
    aggregate: Any = None
    events: int = 0
    first_version: int = 0
    prev: bytes = GENESIS
    chain_ok: bool = True
    chain_problem: str | None = None
    credits: list[dict[str, Any]] = field(default_factory=list)
    topic: str = ""


def replay(lines: Iterable[str], as_of: date, late_interest_rate: Decimal,
           contract_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Rebuild state, invoices and SLA credits from an export alone (no database).

    The chain is recomputed over the exported stored bytes and the events are rebuilt
    from those same bytes (personal fields from ``payload``), so the figures come from
    exactly what the chain covers. Each aggregate's chain is checked from version 1; an
    export that starts later can only be checked from its first line on.
    """
    transcoder = offline_transcoder()
    mapper: Mapper[uuid.UUID] = Mapper(transcoder)
    seen: dict[uuid.UUID, _Replayed] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            oid = uuid.UUID(record["aggregate_id"])
            version, topic, stored = int(record["version"]), str(record["topic"]), record["stored"].encode()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput("rule book 10", f"line {number} is not an audit export record ({type(exc).__name__})",
                               "file") from None
        if contract_id is not None and oid != contract_id:
            continue
        item = seen.setdefault(oid, _Replayed(first_version=version, topic=topic))
        recorded = bytes.fromhex(record["hash"]) if record.get("hash") else None
        if item.events == 0 and version != 1:
            # a partial export: the first line cannot be checked, the rest chain from its hash
            item.chain_problem = f"export starts at version {version}: chain checked from there on"
            item.prev = recorded or GENESIS
        else:
            computed = chain_hash(item.prev, oid, version, topic, stored)
            expected = item.first_version + item.events
            problem = (f"version {expected} missing (found {version})" if version != expected
                       else f"version {version}: no hash" if recorded is None
                       else f"version {version}: stored bytes do not match the hash" if recorded != computed
                       else None)
            if problem is not None and item.chain_ok:
                item.chain_ok, item.chain_problem = False, problem
            if version != expected:  # a gap: the state cannot be folded any further
                continue
            item.prev = computed
        state = transcoder.decode(stored)
        payload = record.get("payload") or {}
        for name, value in list(state.items()):
            if is_sealed(value):
                state[name] = payload.get(name, erased_value(name))
        event = mapper.to_domain_event(StoredEvent(oid, version, topic, transcoder.encode(state)))
        item.aggregate = event.mutate(item.aggregate)  # type: ignore[attr-defined]
        item.events += 1
        if isinstance(event, ContractEvents.CreditGranted | ContractEvents.CreditRejected):
            item.credits.append(_credit(event))
    return {
        "as_of": DATE.encode(as_of),
        "late_interest_rate": str(late_interest_rate),
        "contracts": [_contract_summary(oid, item, as_of, late_interest_rate)
                      for oid, item in seen.items() if isinstance(item.aggregate, Contract)],
        "other_aggregates": sorted({item.topic.split(":")[-1].split(".")[0] for item in seen.values()
                                    if not isinstance(item.aggregate, Contract)}),
        "chains_ok": all(item.chain_ok for item in seen.values()),
    }


def _credit(event: Any) -> dict[str, Any]:
    if isinstance(event, ContractEvents.CreditGranted):
        return {"claim_id": str(event.claim_id), "decision": "granted", "remedy": event.remedy,
                "amount": event.amount, "credit_days": event.credit_days,
                "breach_month": MONTH.encode(event.breach_month)}
    return {"claim_id": str(event.claim_id), "decision": "rejected", "reason": event.reason}


def invoice_documents(contract: Contract, as_of: date, late_interest_rate: Decimal) -> list[dict[str, Any]]:
    """Invoices as ``Invoice.to_dict`` plus late interest as of ``as_of`` (Art. 9.4)."""
    return [{**inv.to_dict(), "late_interest": inv.late_interest(as_of, late_interest_rate)}
            for inv in sorted(contract.ledger.invoices.values(), key=lambda i: (i.issued_on, i.period))]


def _contract_summary(oid: uuid.UUID, item: _Replayed, as_of: date, rate: Decimal) -> dict[str, Any]:
    c: Contract = item.aggregate
    invoices = invoice_documents(c, as_of, rate)
    return {
        "contract_id": str(oid),
        "customer_number": c.customer_number,
        "service": c.service,
        "version": c.version,
        "state": c.state.value,
        "grade": c.plan.grade if c.plan else None,
        "cycle": c.cycle.value if c.cycle else None,
        "users": c.users,
        "first_month": MONTH.encode_optional(c.first_month),
        "ended_on": DATE.encode_optional(c.ended_on),
        "retention_until": DATE.encode_optional(c.retention_until),
        "data_deleted": c.data_deleted,
        "contractor": c.contractor,
        "invoices": invoices,
        "totals": {
            "invoiced": sum(i["total"] for i in invoices),
            "paid": sum(i["paid"] for i in invoices),
            "outstanding": sum(i["outstanding"] for i in invoices),
            "refunded": sum(i["refunded"] for i in invoices),
            "late_interest": sum(i["late_interest"] for i in invoices),
        },
        "sla_credits": item.credits,
        "pending_fee_reductions": [{"claim_id": k, "amount": a} for k, a in c.ledger.pending_credits],
        "chain": {"ok": item.chain_ok, "problem": item.chain_problem, "events": item.events,
                  "from_version": item.first_version},
    }


# --------------------------------------------------------------------------- disclosure


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def retention_document(contract: Contract, policy: Policy) -> dict[str, Any]:
    """When each kind of data goes and why (spec 10): for the disclosure and the operator."""
    erasure_on = contract.contractor_data_erasure_on(policy)
    owed = contract.owed()
    return {
        "stored_data": {
            "article": "Art. 15.3",
            "deletion_on": _iso(contract.retention_until),
            "deleted_on": _iso(contract.stored_data_deleted_on),
        },
        "contractor_data": {
            "article": "Art. 13; privacy policy 7",
            "erased_on": _iso(contract.contractor_erased_on),
            "erasure_on": None if contract.data_deleted else _iso(erasure_on),
            "records_kept_until": _iso(contract.records_kept_until(policy)),
            "owed": owed.describe(),
            "contacts_erased_on": _iso(contract.contacts_erased_on),
        },
    }


def contracts_of_customer(app: ContractsApplication, customer_number: str) -> list[uuid.UUID]:
    """Contracts opened for ``customer_number`` (scans the creation events: an operator tool)."""
    return [cid for cid, number in opened_contracts(app) if number == customer_number]


def opened_contracts(app: ContractsApplication) -> Iterator[tuple[uuid.UUID, str]]:
    """(contract id, customer number) of every contract, from the creation events in the order
    stored; a creation event that does not decode is left out (``verify`` names it)."""
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=500, topics=[OPENED_TOPIC])
        for n in page:
            try:
                opened = decode_event(app.mapper, n, position=n.id)
            except UndecodableEvent:
                continue
            yield uuid.UUID(str(n.originator_id)), str(getattr(opened, "customer_number", ""))
        if len(page) < 500:
            return
        start = page[-1].id + 1


def disclosure(app: ContractsApplication, *, contract_id: uuid.UUID | None = None,
               customer_number: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Everything held about one contractor as one document (開示等の請求). Once a
    contract's data is deleted the document says so (``erased``, ``erased_on``) and shows
    what remains: amounts and dates with the personal fields reading as erased."""
    if (contract_id is None) == (customer_number is None):
        raise InvalidInput("rule book 10", "give exactly one of contract_id and customer_number", "customer_number")
    ids = [contract_id] if contract_id is not None else contracts_of_customer(app, customer_number or "")
    if not ids:
        raise NotFound("rule book 10", "no contract for this customer number", "customer_number")
    now = now or datetime.now(UTC)
    as_of = jst_date(now)
    contracts = [_disclose_contract(app, cid, as_of) for cid in ids if cid is not None]
    return {
        "document": "disclosure of personal data held (privacy policy: 開示等の請求)",
        "customer_number": contracts[0]["customer_number"],
        "generated_at": UTC_INSTANT.encode(now),
        "erased": all(c["erased"] for c in contracts),
        "contracts": contracts,
    }


def _disclose_contract(app: ContractsApplication, contract_id: uuid.UUID, as_of: date) -> dict[str, Any]:
    contract = app.get_contract(contract_id)
    records = list(export_records(app, contract_id))
    erased_on = contract.contractor_erased_on.isoformat() if contract.contractor_erased_on else None
    personal: list[dict[str, Any]] = [
        {"version": r["version"], "event": r["event"], "recorded_at": r["recorded_at"],
         **{name: r["payload"].get(name) for name in r["sealed"]}}
        for r in records if r["sealed"]
    ]
    document: dict[str, Any] = {
        "contract_id": str(contract_id),
        "customer_number": contract.customer_number,
        "service": contract.service,
        "state": contract.state.value,
        "erased": contract.data_deleted,
        "erased_on": erased_on,
        "retention": retention_document(contract, app.policy),
        "requests": [{k: r["payload"].get(k) for k in ("request", "received_on", "erased_fields", "kept_fields",
                                                        "kept_until", "kept_because", "actor")}
                     for r in records if r["event"] == "PrivacyRequestAnswered"],
    }
    if contract.data_deleted:
        document["statement"] = (
            f"The personal data of this contract (contractor information and claim evidence) was erased "
            f"on {erased_on}: its keys were destroyed and it can no longer be read. "
            "The records below hold no personal data; amounts and dates are kept.")
        document["current_contractor"] = None
        document["personal_data"] = []
    else:
        document["current_contractor"] = dict(contract.contractor)
        document["personal_data"] = personal
    document["invoices"] = invoice_documents(contract, as_of, app.policy.late_interest_rate)
    document["events"] = [{k: r[k] for k in ("position", "version", "event", "recorded_at", "payload")}
                          for r in records]
    return document

