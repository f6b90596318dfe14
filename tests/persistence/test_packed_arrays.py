"""The write's array parameters packed in PostgreSQL's binary array format
(``infrastructure.persistence.packed_arrays``, issue 21): the server reads back exactly the
values psycopg's own list adaptation sends, for the values a write can carry (non-ASCII
topics, empty and binary states, versions past 2**31, one and many elements, none)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from infrastructure.persistence import packed_arrays as packed

pytestmark = [pytest.mark.postgres]

CASES = [
    ([uuid.UUID(int=0)], [1], ["domain.contract:Contract.Created"], [b""], [b"\x00" * 32]),
    ([uuid.uuid4(), uuid.UUID(int=2**128 - 1)], [2**31 + 7, 2**63 - 1], ["a", "契約.変更"],
     [b"\x00\xff" * 300, bytes(range(256))], [b"h" * 32, b"\x01"]),
    ([uuid.uuid4() for _ in range(50)], list(range(1, 51)), [f"t{i}" for i in range(50)],
     [bytes([i]) * i for i in range(50)], [bytes([i]) * 32 for i in range(50)]),
    ([], [], [], [], []),
]


@pytest.mark.parametrize("values", CASES, ids=["one", "edges", "fifty", "empty"])
def test_packed_arrays_read_back_as_the_lists_psycopg_sends(pg_dsn: str, values: tuple[list, ...]) -> None:
    ids, versions, topics, states, hashes = values
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT %b::uuid[] IS NOT DISTINCT FROM %b::uuid[], %b::bigint[] IS NOT DISTINCT FROM %b::bigint[], "
            "%b::text[] IS NOT DISTINCT FROM %b::text[], %b::bytea[] IS NOT DISTINCT FROM %b::bytea[], "
            "%b::bytea[] IS NOT DISTINCT FROM %b::bytea[], cardinality(%b::uuid[]), %b::text[]",
            (packed.uuids(ids), ids, packed.bigints(versions), versions, packed.texts(topics), topics,
             packed.byteas(states), states, packed.byteas(hashes), hashes, packed.uuids(ids),
             packed.texts(topics))).fetchone()
    assert row is not None
    assert row[:5] == (True, True, True, True, True)
    assert row[5] == len(ids)
    assert row[6] == topics
