"""JSON encodings of folded state: the billing Ledger (without its invoices) and invoices.

The Ledger is encoded field by field from ``dataclasses.fields`` with tagged values, so a
field added to ``domain.billing.Ledger`` is carried along (an unknown value type fails loudly
instead of being dropped). Invoices live in their own read table, not in the state.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from domain.billing import Invoice, InvoiceLine, Ledger, Payment, WriteOff
from domain.calendar import Month
from domain.catalog import Campaign, PricePlan
from domain.invoicing import RateTotal
from domain.values import CAMPAIGN, DATE, DECIMAL, MONTH, PRICE_PLAN, UUID, ValueCodec

_LINE_FIELDS = tuple(f.name for f in dataclasses.fields(InvoiceLine))
_LINE_DERIVED = ("reduced_rate",)  # shown by ``InvoiceLine.to_dict``, not a field


def dumps(data: Any) -> str:
    """Canonical JSON: equal states give equal strings (rebuild == incremental). orjson (issue 21:
    ~10x faster than ``json``; the same text as ``json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`` for these documents: str keys, ints within 64 bits, no floats)."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


_TEXT_TAGS: dict[type, tuple[str, ValueCodec[Any]]] = {
    Month: ("$m", MONTH), date: ("$d", DATE), Decimal: ("$dec", DECIMAL), uuid.UUID: ("$u", UUID),
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    **{tag: codec.decode for tag, codec in _TEXT_TAGS.values()},
    "$plan": lambda raw: _frozen("$plan", raw, PRICE_PLAN.decode),
    "$camp": lambda raw: _frozen("$camp", raw, CAMPAIGN.decode),
}
_LIMIT = 1_024  # plans and campaigns remembered (each cache is cleared beyond it)
_DECODED: dict[tuple[str, bytes], Any] = {}  # (tag, canonical JSON) -> the frozen value, shared
_ENCODED: dict[int, tuple[Any, Any]] = {}  # id(frozen value) -> (the value, its JSON form)


def _frozen(tag: str, raw: dict[str, Any], decoder: Callable[[Any], Any]) -> Any:
    """Plans and campaigns are frozen and few: each decoded once per process, the value shared
    by every state holding it (issue 21: every state loaded holds a plan and a campaign)."""
    key = (tag, orjson.dumps(raw, option=orjson.OPT_SORT_KEYS))
    value = _DECODED.get(key)
    if value is None:
        if len(_DECODED) >= _LIMIT:
            _DECODED.clear()
        value = _DECODED[key] = decoder(raw)
    return value


def _encoded_once(value: Any, encoder: Callable[[Any], Any]) -> Any:
    """The JSON form of a frozen plan or campaign, made once per object (by identity: hashing a
    plan hashes all its fields; the object is held, so its id is not reused while remembered).
    Only read by ``dumps``, never changed."""
    hit = _ENCODED.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    if len(_ENCODED) >= _LIMIT:
        _ENCODED.clear()
    data = encoder(value)
    _ENCODED[id(value)] = (value, data)
    return data


def encode(value: Any) -> Any:
    """A value as tagged JSON: ``{"$m": "2026-04"}`` (the forms of ``domain.values``)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    text = _TEXT_TAGS.get(type(value))
    if text is not None:
        tag, codec = text
        return {tag: codec.encode(value)}
    if isinstance(value, PricePlan):
        return {"$plan": _encoded_once(value, PRICE_PLAN.encode)}
    if isinstance(value, Campaign):
        return {"$camp": _encoded_once(value, CAMPAIGN.encode)}
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, set | frozenset):
        return {"$set": sorted((encode(v) for v in value), key=dumps)}
    if isinstance(value, dict):
        if value and all(isinstance(k, Month) for k in value) and all(type(v) is int for v in value.values()):
            return {"$mrl": _month_runs(value)}
        return {"$map": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"projection state cannot encode {type(value).__name__}: teach application.projections.codec")


def decode(data: Any) -> Any:
    if data is None or isinstance(data, bool | int | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise TypeError(f"not an encoded value: {data!r}")
    (tag, raw), = data.items()
    simple = _DECODERS.get(tag)
    if simple is not None:
        return simple(raw)
    if tag == "$t":
        return tuple(decode(v) for v in raw)
    if tag == "$set":
        return {decode(v) for v in raw}
    if tag == "$mrl":
        out: dict[Month, int] = {}
        for start, count, fee in raw:
            first = MONTH.decode(start)
            for i in range(count):
                out[first.plus(i)] = fee
        return out
    if tag == "$map":
        return {decode(k): decode(v) for k, v in raw}
    raise TypeError(f"unknown tag {tag!r}")


def _month_runs(fees: dict[Month, int]) -> list[list[Any]]:
    """{2026-04: 100, 2026-05: 100, 2026-07: 90} -> [["2026-04", 2, 100], ["2026-07", 1, 90]] (key order kept)."""
    runs: list[list[Any]] = []
    previous = -2
    for month, fee in fees.items():
        index = month.year * 12 + month.month
        if index == previous + 1 and runs[-1][2] == fee:
            runs[-1][1] += 1
        else:
            runs.append([str(month), 1, fee])
        previous = index
    return runs


_LEDGER_FIELDS = tuple(f.name for f in dataclasses.fields(Ledger) if f.name != "invoices")


_PLAIN = frozenset({type(None), bool, int, str})  # ``encode`` and ``decode`` return these as they are


def encode_ledger(ledger: Ledger) -> dict[str, Any]:
    """Every Ledger field except ``invoices`` (stored as rows of the invoice table). Plain values
    are not passed through ``encode`` (issue 21: half the fields of a state, once per contract)."""
    out: dict[str, Any] = {}
    for name in _LEDGER_FIELDS:
        value = getattr(ledger, name)
        out[name] = value if type(value) in _PLAIN else encode(value)
    return out


def decode_ledger(data: dict[str, Any]) -> Ledger:
    return Ledger(**{name: value if type(value) in _PLAIN else decode(value) for name, value in data.items()})


def encode_lines(lines: list[InvoiceLine]) -> str:
    """The lines as the API shows them (``InvoiceLine.to_dict``) plus any field it leaves out."""
    return orjson.dumps([_line_dict(line) for line in lines]).decode()


def _line_dict(line: InvoiceLine) -> dict[str, Any]:
    d = line.to_dict()
    if len(d) != len(_LINE_FIELDS) + len(_LINE_DERIVED):
        d.update({k: getattr(line, k) for k in _LINE_FIELDS if k not in d})
    return d


def decode_lines(text: str) -> list[InvoiceLine]:
    return [InvoiceLine.from_dict(d) for d in orjson.loads(text)]


def encode_invoice_doc(invoice: Invoice) -> str:
    """What an invoice row holds beyond its columns (never the recipient: personal data)."""
    return dumps({
        "status": invoice.status,
        "issuer": invoice.issuer,
        "rate_totals": [r.to_dict() for r in invoice.rate_totals],
        "document_hash": invoice.document_hash,
        "original": invoice.original,
        "reason": invoice.reason,
        "interest_billed": invoice.interest_billed,
        "interest_waived": invoice.interest_waived,
        "credited": invoice.credited,
    })


def invoice_from_row(row: dict[str, Any], settled: list[tuple[str, date, int]]) -> Invoice:
    """Rebuild a domain Invoice from its read-table row (see ``InvoiceRow``) and its payment rows
    (kind, date, amount: payments, reversals and write-offs of rule book 7, in recorded order)."""
    doc = orjson.loads(row.get("doc") or "{}")
    return Invoice(
        number=row.get("number") or "",
        document_type=row.get("document_type") or "invoice",
        status=doc.get("status", "issued"),
        issuer=doc.get("issuer"),
        rate_totals=[RateTotal.from_dict(r) for r in doc.get("rate_totals", [])],
        document_hash=doc.get("document_hash", ""),
        original=doc.get("original"),
        reason=doc.get("reason"),
        interest_billed=int(doc.get("interest_billed", 0)),
        interest_waived=int(doc.get("interest_waived", 0)),
        credited=int(doc.get("credited", 0)),
        invoice_id=uuid.UUID(str(row["invoice_id"])),
        contract_id=uuid.UUID(str(row["contract_id"])),
        kind=row["kind"],
        period=row["period"],
        month=MONTH.decode(row["month"]),
        issued_on=_as_date(row["issued_on"]),
        due_on=_as_date(row["due_on"]),
        lines=decode_lines(row["lines"]),
        payments=[Payment(on, amount, None, kind) for kind, on, amount in settled if kind != "write_off"],
        refunded=int(row["refunded"]),
        write_offs=[WriteOff(on, amount) for kind, on, amount in settled if kind == "write_off"],
    )


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else DATE.decode(str(value))
