"""Transcodings for the values our events carry beyond JSON, UUID, Decimal and datetime, and the
transcoder that decodes them (``FastJSONTranscoder``).

Each transcoding is the event store's envelope around one codec of ``domain.values`` (the names
are part of the stored events: never change them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID, SafeUUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Transcoding, UUIDAsHex

from domain.values import DATE, ENUMS, MONTH, PRICE_PLAN, ValueCodec

_MARKER = b'"_type_"'
_ESCAPE = b"\\u"
# orjson reads an integer beyond 64 bits as a float: bytes with a run of 19 digits go to the library
_DIGITS_AS_ZERO = bytes(b"0"[0] if b"0"[0] <= i <= b"9"[0] else b"x"[0] for i in range(256))
_LONG_DIGITS = b"0" * 19


class CodecTranscoding(Transcoding):
    """The library's ``Transcoding`` for one value codec (``codec_transcoding`` names each)."""

    codec: ValueCodec[Any]

    def encode(self, obj: Any) -> Any:
        return self.codec.encode(obj)

    def decode(self, data: Any) -> Any:
        return self.codec.decode(data)


def codec_transcoding(codec: ValueCodec[Any]) -> Transcoding:
    """The library's ``Transcoding`` for one value codec (one class per codec, made once: every
    application's transcoder registers the same stateless instance)."""
    transcoding = _CODEC_TRANSCODINGS.get(codec.name)
    if transcoding is None or transcoding.codec is not codec:
        name = f"{codec.type.__name__}Transcoding"
        cls = type(name, (CodecTranscoding,), {"type": codec.type, "name": codec.name, "codec": codec,
                                              "__qualname__": name, "__module__": __name__})
        transcoding = _CODEC_TRANSCODINGS[codec.name] = cls()
    return transcoding


_CODEC_TRANSCODINGS: dict[str, CodecTranscoding] = {}


EVENT_VALUES: tuple[ValueCodec[Any], ...] = (DATE, MONTH, PRICE_PLAN, *ENUMS)
"""The value types events carry that the library does not transcode itself."""


def register_all(transcoder: JSONTranscoder) -> None:
    for codec in EVENT_VALUES:
        transcoder.register(codec_transcoding(codec))


class FastJSONTranscoder(JSONTranscoder):
    """The library's ``JSONTranscoder``, decoding with orjson (issue 21: the library's per-object
    hook, called by ``json`` for every dict, was ~40 % of a contract's first load).

    Decoding gives the objects the library's decoding gives, for any bytes: orjson parses, then a
    walk does what the hook does (depth first, in document order, children before the dict that
    holds them: a dict of exactly ``_type_`` and ``_data_`` becomes its transcoding's value), and
    stops once every dict with a ``_type_`` key has been seen (the key's occurrences in the bytes
    are counted first, so the invoice document after an event's few markers is never walked).
    What orjson refuses (bytes that are not UTF-8 or not JSON, ``NaN``, lone surrogates) or reads
    otherwise (a run of 19 digits: an integer beyond 64 bits would be a float) is decoded by the
    library's own method, so its value, or its error, is the library's. Encoding is the library's,
    unchanged."""

    def __init__(self) -> None:
        self._decoders: dict[str, Callable[[Any], Any]] = {}
        self._text_decoders: dict[str, Callable[[str], Any]] = {}  # for ``_data_`` a str
        super().__init__()
        self._walk_dict, self._walk_list = _walkers(self._decoders, self._text_decoders, self._decode_obj)

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        decode: Callable[[Any], Any] = transcoding.decode
        kind = type(transcoding)
        # the MRO, not isinstance: Transcoding is an ABC, and a negative isinstance walks every
        # subclass of CodecTranscoding ever made (a class per codec per transcoder: quadratic)
        if CodecTranscoding in kind.__mro__ and kind.decode is CodecTranscoding.decode:
            decode = cast(CodecTranscoding, transcoding).codec.decode  # what its decode calls, one call fewer
        self._decoders[transcoding.name] = decode
        self._text_decoders[transcoding.name] = _TEXT_DECODERS.get(type(transcoding), decode)

    def decode(self, data: bytes) -> Any:
        if type(data) is not bytes or _LONG_DIGITS in data.translate(_DIGITS_AS_ZERO):
            return super().decode(data)
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().decode(data)
        # a key can hide behind an escape (``"\\u005ftype_"``): then every dict is visited
        left = len(data) if _ESCAPE in data else data.count(_MARKER)
        if not left:
            return obj
        kind = type(obj)
        if kind is dict:
            return self._walk_dict(obj, [left])
        if kind is list:
            self._walk_list(obj, [left])
        return obj


Walk = Callable[[Any, list[int]], Any]


def _uuid_from_hex(data: str) -> UUID:
    """``UUID(data)``, as the library's ``UUIDAsHex`` decodes (its form is ``UUID.hex``), without
    ``UUID.__init__``'s general parsing: 32 alphanumeric characters hold no ``urn:``, braces or
    hyphens for it to strip, so it would take ``int(data, 16)`` (always below 2**128) as it is."""
    if len(data) == 32 and data.isalnum():
        value = object.__new__(UUID)
        object.__setattr__(value, "int", int(data, 16))
        object.__setattr__(value, "is_safe", SafeUUID.unknown)
        return value
    return UUID(data)


_TEXT_DECODERS: dict[type[Transcoding], Callable[[str], Any]] = {
    UUIDAsHex: _uuid_from_hex,  # the library's three: what their decode does with a str
    DatetimeAsISO: datetime.fromisoformat,
    DecimalAsStr: Decimal,
}


def _walkers(decoders: dict[str, Callable[[Any], Any]], text_decoders: dict[str, Callable[[str], Any]],
             hook: Callable[[dict[str, Any]], Any]) -> tuple[Walk, Walk]:
    """The walk of ``FastJSONTranscoder.decode`` over a dict and over a list (in place); ``left``
    holds how many dicts with a ``_type_`` key may still come. A marker whose name is a string is
    decoded where its parent meets it (one call fewer per marker: most are a date or an id), by
    ``text_decoders`` when its ``_data_`` is a string."""

    def walk_dict(d: dict[str, Any], left: list[int]) -> Any:
        for key, value in d.items():
            kind = type(value)
            if kind is dict:
                if "_type_" in value and len(value) == 2 and "_data_" in value and type(name := value["_type_"]) is str:
                    left[0] -= 1
                    data = value["_data_"]
                    kind = type(data)
                    if kind is str:
                        if name in text_decoders:
                            d[key] = text_decoders[name](data)
                        else:
                            d[key] = hook(value)  # the library's error for a name not registered
                    else:
                        if kind is dict:
                            data = walk_dict(data, left)
                        elif kind is list:
                            walk_list(data, left)
                        if name in decoders:
                            d[key] = decoders[name](data)
                        else:
                            d[key] = hook(value)
                else:
                    d[key] = walk_dict(value, left)
                if not left[0]:
                    break
            elif kind is list:
                walk_list(value, left)
                if not left[0]:
                    break
        if "_type_" in d:
            left[0] -= 1
            if len(d) == 2 and "_data_" in d:
                decode = decoders.get(d["_type_"])
                if decode is None:
                    return hook(d)
                return decode(d["_data_"])
        return d

    def walk_list(items: list[Any], left: list[int]) -> None:
        for i, value in enumerate(items):
            kind = type(value)
            if kind is dict:
                items[i] = walk_dict(value, left)
                if not left[0]:
                    return
            elif kind is list:
                walk_list(value, left)
                if not left[0]:
                    return

    return walk_dict, walk_list
