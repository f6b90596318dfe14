"""The write's array parameters in PostgreSQL's binary array format, built here in one pass
(issue 21).

psycopg adapts a Python list per call: it scans the list for an element type, builds a list
dumper and a dumper per element type, and dumps element by element (~0.1 ms of the one-statement
write's five arrays, the largest share of its client CPU after the round trip). The values of
the write are always of the same five types and never NULL, so each array is packed directly
(``struct``: the array header, then a length and the bytes of each element) into a ``bytes``
subclass whose dumper hands the bytes over unchanged with the array's type oid.

Format (PostgreSQL's ``array_send``): ndim, has-nulls flag, element oid, then for each dimension
its length and lower bound (1), then each element as a 4-byte length and its binary form: uuid
16 bytes, bigint 8 bytes big-endian, text UTF-8, bytea as is.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.postgres import types as pg_types
from psycopg.pq import Format


def _oids(name: str) -> tuple[int, int]:
    info = pg_types.get(name)
    assert info is not None, name
    return info.oid, info.array_oid


_UUID, _UUID_ARRAY = _oids("uuid")
_INT8, _INT8_ARRAY = _oids("int8")
_TEXT, _TEXT_ARRAY = _oids("text")
_BYTEA, _BYTEA_ARRAY = _oids("bytea")


class PackedArray(bytes):
    """A one-dimensional array without NULLs, already in the binary wire format."""

    __slots__ = ()


class UuidArray(PackedArray):
    __slots__ = ()


class BigintArray(PackedArray):
    __slots__ = ()


class TextArray(PackedArray):
    __slots__ = ()


class ByteaArray(PackedArray):
    __slots__ = ()


def _header(element_oid: int, n: int) -> bytes:
    if n == 0:
        return struct.pack("!iiI", 0, 0, element_oid)
    return struct.pack("!iiIii", 1, 0, element_oid, n, 1)


def _varlen(element_oid: int, items: Sequence[bytes]) -> bytes:
    pack = struct.Struct("!i").pack
    return _header(element_oid, len(items)) + b"".join(pack(len(item)) + item for item in items)


def uuids(values: Sequence[uuid.UUID]) -> UuidArray:
    return UuidArray(_header(_UUID, len(values)) + b"".join(b"\x00\x00\x00\x10" + v.bytes for v in values))


def bigints(values: Sequence[int]) -> BigintArray:
    n = len(values)
    fields: list[int] = []
    for v in values:
        fields += (8, v)
    return BigintArray(_header(_INT8, n) + struct.pack("!" + "iq" * n, *fields))


def texts(values: Sequence[str]) -> TextArray:
    return TextArray(_varlen(_TEXT, [v.encode() for v in values]))


def byteas(values: Sequence[bytes]) -> ByteaArray:
    return ByteaArray(_varlen(_BYTEA, values))


class _PackedDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj  # type: ignore[no-any-return]  # a PackedArray: the wire bytes already


class _UuidArrayDumper(_PackedDumper):
    oid = _UUID_ARRAY


class _BigintArrayDumper(_PackedDumper):
    oid = _INT8_ARRAY


class _TextArrayDumper(_PackedDumper):
    oid = _TEXT_ARRAY


class _ByteaArrayDumper(_PackedDumper):
    oid = _BYTEA_ARRAY


DUMPERS: tuple[tuple[type[PackedArray], type[Dumper]], ...] = (
    (UuidArray, _UuidArrayDumper), (BigintArray, _BigintArrayDumper), (TextArray, _TextArrayDumper),
    (ByteaArray, _ByteaArrayDumper))


def register(adapters: Any = None) -> None:
    """The dumpers on ``adapters`` (default: psycopg's global map, which every connection made
    afterwards starts from). Idempotent; only these private classes are affected."""
    target = adapters if adapters is not None else psycopg.adapters
    for cls, dumper in DUMPERS:
        target.register_dumper(cls, dumper)


register()
