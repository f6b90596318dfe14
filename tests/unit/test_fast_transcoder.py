"""``FastJSONTranscoder`` (issue 21): stored events decode to the objects the library's
``JSONTranscoder`` gives them, and encode to the same bytes.

The stored states below are events as the service wrote them before this transcoder (copied from
a SQLite store of the commit before it); the expected objects are written out by hand.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from application.aggregate_state import STATE_DATACLASSES, box, register_state_transcodings
from application.audit import Sealed, SealedAsDict
from application.transcodings import FastJSONTranscoder, register_all
from domain.billing import Payment
from domain.calendar import Month
from domain.catalog import Campaign, PricePlan
from domain.contract import BillingCycle

ACTOR = {"kind": "system", "name": "application"}

APPLIED = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-01T22:14:18.325252+00:00"},"plan":{"_type_":"price_plan",'
    b'"_data_":{"service":"kintone","grade":"standard","rank":2,"monthly_price":1500,"annual_price":18000,'
    b'"min_users":5,"trial_days":30,"initial_fee":10000,"beta":false,"sla_eligible":true,"store":false,'
    b'"campaign":{"monthly_price":1200,"months":3,"annual_price":16000},"tax_rate":"0.10"}},'
    b'"cycle":{"_type_":"billing_cycle","_data_":"monthly"},"users":10,"contractor":{"records":{"_type_":"sealed",'
    b'"_data_":{"kid":"559dcff7b98755359095ba058a6f1b84","enc":"C2AHYmYJ"}},"contacts":{"_type_":"sealed",'
    b'"_data_":{"kid":"5ec0e76f4d6f57f3af533d7eba174aac","enc":"JH/2Bn18"}}},'
    b'"at":{"_type_":"datetime_iso","_data_":"2026-03-24T01:00:00+00:00"},"actor":{"kind":"system","name":"application"}}'
)
APPLIED_OBJECTS = {
    "timestamp": datetime(2026, 12, 1, 22, 14, 18, 325252, tzinfo=UTC),
    "plan": PricePlan("kintone", "standard", 2, 1500, 18000, 5, 30, 10000, False, True, False,
                      Campaign(1200, 3, 16000), Decimal("0.10")),
    "cycle": BillingCycle.MONTHLY,
    "users": 10,
    "contractor": {"records": Sealed("559dcff7b98755359095ba058a6f1b84", "C2AHYmYJ"),
                   "contacts": Sealed("5ec0e76f4d6f57f3af533d7eba174aac", "JH/2Bn18")},
    "at": datetime(2026, 3, 24, 1, 0, tzinfo=UTC),
    "actor": ACTOR,
}

PAYMENT_RECEIVED = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-01T22:14:18.375372+00:00"},"invoice_id":{"_type_":'
    b'"uuid_hex","_data_":"4980c0b181b350639cdfce2111a32a76"},"amount":24200,"paid_on":{"_type_":"date_iso",'
    b'"_data_":"2026-05-20"},"at":{"_type_":"datetime_iso","_data_":"2026-05-20T01:00:00+00:00"},"reference":'
    b'{"_type_":"sealed","_data_":{"kid":"559dcff7b98755359095ba058a6f1b84","enc":"lyZR3tPF"}},"transfer_id":null,'
    b'"source":"transfer","actor":{"kind":"system","name":"application"}}'
)
PAYMENT_RECEIVED_OBJECTS = {
    "timestamp": datetime(2026, 12, 1, 22, 14, 18, 375372, tzinfo=UTC),
    "invoice_id": uuid.UUID("4980c0b1-81b3-5063-9cdf-ce2111a32a76"),
    "amount": 24200,
    "paid_on": date(2026, 5, 20),
    "at": datetime(2026, 5, 20, 1, 0, tzinfo=UTC),
    "reference": Sealed("559dcff7b98755359095ba058a6f1b84", "lyZR3tPF"),
    "transfer_id": None,
    "source": "transfer",
    "actor": ACTOR,
}

# the markers come first, the invoice document (plain JSON, which the walk never visits) after them
INVOICE_ISSUED = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-01T22:14:18.350065+00:00"},"invoice_id":{"_type_":'
    b'"uuid_hex","_data_":"4980c0b181b350639cdfce2111a32a76"},"recipient":{"_type_":"sealed","_data_":{"kid":'
    b'"559dcff7b98755359095ba058a6f1b84","enc":"YtZIwYZU"}},"document":{"invoice_id":'
    b'"4980c0b1-81b3-5063-9cdf-ce2111a32a76","number":"INV-2026-000001","period":"2026-04","issuer":{"name":'
    b'"\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88\xe9\x81\x8b\xe5\x96\xb6\xe6\xa0\xaa\xe5\xbc\x8f\xe4\xbc\x9a\xe7\xa4\xbe"},'
    b'"lines":[{"kind":"campaign_fee","quantity":10,"unit_price":1200,"amount":12000,"tax_rate":"0.10",'
    b'"reduced_rate":false,"ref":null}],"rate_totals":[{"rate":"0.10","taxable":12000,"tax":1200}],"total":13200,'
    b'"original":null},"document_hash":"a9e85e0f","at":null,"actor":{"kind":"system","name":"application"}}'
)
INVOICE_ISSUED_OBJECTS = {
    "timestamp": datetime(2026, 12, 1, 22, 14, 18, 350065, tzinfo=UTC),
    "invoice_id": uuid.UUID("4980c0b1-81b3-5063-9cdf-ce2111a32a76"),
    "recipient": Sealed("559dcff7b98755359095ba058a6f1b84", "YtZIwYZU"),
    "document": {"invoice_id": "4980c0b1-81b3-5063-9cdf-ce2111a32a76", "number": "INV-2026-000001",
                 "period": "2026-04", "issuer": {"name": "テスト運営株式会社"},
                 "lines": [{"kind": "campaign_fee", "quantity": 10, "unit_price": 1200, "amount": 12000,
                            "tax_rate": "0.10", "reduced_rate": False, "ref": None}],
                 "rate_totals": [{"rate": "0.10", "taxable": 12000, "tax": 1200}], "total": 13200, "original": None},
    "document_hash": "a9e85e0f",
    "at": None,
    "actor": ACTOR,
}


def _registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    """The registrations of the application (``ContractsApplication.register_transcodings``) and its mapper."""
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), SealedAsDict()):
        transcoder.register(transcoding)
    register_all(transcoder)
    register_state_transcodings(transcoder)
    return transcoder


FAST = _registered(FastJSONTranscoder())
LIBRARY = _registered(JSONTranscoder())


@pytest.mark.parametrize(("stored", "expected"), [(APPLIED, APPLIED_OBJECTS),
                                                  (PAYMENT_RECEIVED, PAYMENT_RECEIVED_OBJECTS),
                                                  (INVOICE_ISSUED, INVOICE_ISSUED_OBJECTS)])
def test_stored_events_decode_to_the_objects(stored: bytes, expected: dict[str, Any]) -> None:
    decoded = FAST.decode(stored)
    assert decoded == expected
    assert {k: type(v) for k, v in decoded.items()} == {k: type(v) for k, v in expected.items()}
    assert LIBRARY.decode(stored) == expected  # what the library made of them, as before


@pytest.mark.parametrize("stored", [APPLIED, PAYMENT_RECEIVED, INVOICE_ISSUED])
def test_encoding_gives_the_stored_bytes_back(stored: bytes) -> None:
    assert FAST.encode(FAST.decode(stored)) == stored
    assert LIBRARY.encode(LIBRARY.decode(stored)) == stored


def test_a_snapshot_state_decodes_nested_markers() -> None:
    """Snapshot states nest markers in markers (a dataclass holding a non-string-keyed dict holding
    a dataclass); every one is decoded, children first."""
    payment = Payment(date(2026, 5, 20), 1100, uuid.UUID(int=5))
    state = {"payments": {uuid.UUID(int=5): [payment]}, "seen": {3, 1}, "pair": (Month(2026, 4), 2)}
    stored = FAST.encode(box(state))
    assert stored == LIBRARY.encode(box(state))
    assert FAST.decode(stored) == {"payments": {uuid.UUID(int=5): [payment]}, "seen": {1, 3},
                                   "pair": (Month(2026, 4), 2)}
    assert type(FAST.decode(stored)["pair"]) is tuple
    assert (Payment, "state_payment") in STATE_DATACLASSES


DATE_MARKER = '{"_type_":"date_iso","_data_":"2026-04-01"}'
EDGE_CASES = [
    # markers before, between and after plain containers (the walk stops after the last one)
    '{"a":' + DATE_MARKER + ',"b":[{"x":[1,{"y":2}]}],"c":{"_type_":"month","_data_":"2026-04"},"d":{"z":[]}}',
    '[' + DATE_MARKER + ',[[' + DATE_MARKER + ']],{"k":' + DATE_MARKER + '}]',
    DATE_MARKER,  # the whole state one marker
    '{"note":"_type_","later":' + DATE_MARKER + '}',  # the key's text as a value: counted, still found
    '{"_type_":"date_iso","_data_":"2026-04-01","extra":1}',  # three keys: a plain dict
    '{"_type_":"date_iso"}',
    '{"_data_":"2026-04-01","x":1}',
    '{"\\u005ftype_":"date_iso","_data_":"2026-04-01"}',  # an escaped key is the same key
    '{"a":"\\u00e9","b":' + DATE_MARKER + '}',
    '{"a":1,"a":' + DATE_MARKER + '}',  # a repeated key: the last one wins
    '{"n":123456789012345678901234567890,"d":' + DATE_MARKER + '}',  # beyond 64 bits
    '{"big":[18446744073709551615,18446744073709551616,-9223372036854775808,-9223372036854775809]}',
    '{"f":[0.1,-0.0,1e16,2.5e-8,1e308,1e400,4.9e-324,2.2250738585072011e-308]}',
    '{"f":0.1000000000000000055511151231257827021181583404541015625}',
    '{"nan":NaN,"inf":-Infinity}',
    '{"s":"\\ud800"}',  # a lone surrogate
    '{"t":"tab\\tnew\\nline","e":"","u":"日本"}',
    '{}', '[]', '"text"', '12', 'null', ' {"a" : [ 1 , 2 ] } ',
    '{"x":{"_type_":"sealed","_data_":{"kid":"k","enc":"e"}},"y":{"_type_":"state_set","_data_":[2,1]}}',
    # ids in the forms UUID() reads besides the stored one (32 lowercase hex digits)
    '[{"_type_":"uuid_hex","_data_":"4980C0B181B350639CDFCE2111A32A76"},'
    '{"_type_":"uuid_hex","_data_":"4980c0b1-81b3-5063-9cdf-ce2111a32a76"},'
    '{"_type_":"uuid_hex","_data_":"{4980c0b181b350639cdfce2111a32a76}"},'
    '{"_type_":"uuid_hex","_data_":"urn:uuid:4980c0b1-81b3-5063-9cdf-ce2111a32a76"},'
    '{"_type_":"uuid_hex","_data_":"\uff14980c0b181b350639cdfce2111a32a76"}]',
    '{"d":{"_type_":"decimal_str","_data_":"1.10"},"m":{"_type_":"month","_data_":"2026-04"}}',
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_any_json_decodes_as_the_library_decodes_it(text: str) -> None:
    data = text.encode("utf8", "surrogatepass")
    expected = LIBRARY.decode(data)
    decoded = FAST.decode(data)
    assert decoded == expected or (json.dumps(decoded, default=repr) == json.dumps(expected, default=repr))
    assert type(decoded) is type(expected)


def test_hand_computed_edge_cases() -> None:
    assert FAST.decode(EDGE_CASES[0].encode()) == {"a": date(2026, 4, 1), "b": [{"x": [1, {"y": 2}]}],
                                                   "c": Month(2026, 4), "d": {"z": []}}
    assert FAST.decode(EDGE_CASES[1].encode()) == [date(2026, 4, 1), [[date(2026, 4, 1)]], {"k": date(2026, 4, 1)}]
    assert FAST.decode(b'{"\\u005ftype_":"date_iso","_data_":"2026-04-01"}') == date(2026, 4, 1)
    assert FAST.decode(b'{"a":1,"a":' + DATE_MARKER.encode() + b'}') == {"a": date(2026, 4, 1)}
    assert FAST.decode(b'{"n":123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    big = FAST.decode(b'[18446744073709551616,-9223372036854775809]')
    assert big == [2**64, -(2**63) - 1] and all(type(n) is int for n in big)
    assert FAST.decode(b'{"_type_":"date_iso"}') == {"_type_": "date_iso"}
    uid = FAST.decode(b'{"_type_":"uuid_hex","_data_":"4980c0b181b350639cdfce2111a32a76"}')
    assert uid == uuid.UUID("4980c0b1-81b3-5063-9cdf-ce2111a32a76") and uid.int == 0x4980c0b181b350639cdfce2111a32a76
    assert type(uid) is uuid.UUID and uid.is_safe is uuid.SafeUUID.unknown
    assert FAST.decode(b'{"_type_":"uuid_hex","_data_":"4980C0B181B350639CDFCE2111A32A76"}') == uid
    assert FAST.decode(b'{"_type_":"decimal_str","_data_":"1.10"}').as_tuple() == Decimal("1.10").as_tuple()


@pytest.mark.parametrize("data", [
    b'{"a":1',  # cut short
    b'{"a":"\xff"}',  # not UTF-8
    b'{"a":1} x',  # trailing bytes
    b'{"a":{"_type_":"no_such_type","_data_":1}}',
    b'{"a":{"_type_":["a"],"_data_":1}}',  # an unhashable name
    b'{"a":{"_type_":"date_iso","_data_":"not a date"}}',
    b'{"a":{"_type_":"no_such_type","_data_":1},"b":',  # an unknown name, then cut short
    b'{"a":{"_type_":"uuid_hex","_data_":"4980c0b181b350639cdfce2111a32a7g"}}',  # not hex
    b'{"a":{"_type_":"uuid_hex","_data_":"4980c0b181b35063"}}',  # too short
    b'{"a":{"_type_":"uuid_hex","_data_":12}}',  # not text
    b'{"a":{"_type_":"datetime_iso","_data_":["2026-04-01"]}}',
    b'{"a":{"_type_":"decimal_str","_data_":"ten"}}',
])
def test_bad_bytes_fail_as_the_library_fails(data: bytes) -> None:
    with pytest.raises(Exception) as library:
        LIBRARY.decode(data)
    with pytest.raises(Exception) as fast:
        FAST.decode(data)
    assert type(fast.value) is type(library.value)
    assert str(fast.value) == str(library.value)


def test_unknown_names_raise_the_library_error() -> None:
    with pytest.raises(TranscodingNotRegisteredError, match="no_such_type"):
        FAST.decode(b'{"a":{"_type_":"no_such_type","_data_":1}}')


def test_not_bytes_is_refused_as_the_library_refuses_it() -> None:
    with pytest.raises(AttributeError):
        FAST.decode('{"a":1}')  # type: ignore[arg-type]


_SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=8)
_MARKERS = st.sampled_from([("date_iso", "2026-04-01"), ("month", "2026-04"), ("decimal_str", "0.10"),
                            ("uuid_hex", "4980c0b181b350639cdfce2111a32a76"), ("billing_cycle", "annual"),
                            ("datetime_iso", "2026-03-24T01:00:00+00:00")])
_KEYS = st.sampled_from(["_type_", "_data_", "a", "b", "kid", "enc"]) | st.text(max_size=4)


def _json(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    marker = _MARKERS.map(lambda m: {"_type_": m[0], "_data_": m[1]})
    wrapped = children.map(lambda c: {"_type_": "state_tuple", "_data_": c if isinstance(c, list) else [c]})
    return st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4) | marker | wrapped


@settings(max_examples=200, deadline=None)
@given(st.recursive(_SCALARS | _MARKERS.map(lambda m: {"_type_": m[0], "_data_": m[1]}), _json, max_leaves=20))
def test_generated_json_decodes_as_the_library_decodes_it(value: Any) -> None:
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf8", "surrogatepass")
    try:
        expected = LIBRARY.decode(data)
    except Exception as exc:  # noqa: BLE001 - the same failure is expected
        with pytest.raises(type(exc)):
            FAST.decode(data)
        return
    decoded = FAST.decode(data)
    assert decoded == expected
    assert repr(decoded) == repr(expected)  # the same types all the way down (a tuple is not a list)


def test_building_transcoders_makes_no_new_transcoding_classes() -> None:
    """Every application builds a transcoder; a class per codec (or per state dataclass) per build
    made each later negative ``isinstance`` against the ABC walk them all (the test suite's setup
    grew quadratically). Built 50 times, the transcoding classes are the same ones."""
    from application.transcodings import CodecTranscoding

    def build() -> FastJSONTranscoder:
        transcoder = FastJSONTranscoder()
        register_all(transcoder)
        register_state_transcodings(transcoder)
        return transcoder

    first = build()
    subclasses = len(CodecTranscoding.__subclasses__())
    for _ in range(50):
        again = build()
    assert len(CodecTranscoding.__subclasses__()) == subclasses
    assert {name: type(t) for name, t in again.names.items()} == {name: type(t) for name, t in first.names.items()}
