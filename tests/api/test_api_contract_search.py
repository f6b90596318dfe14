"""Contract search (issue 19): ``GET /v1/contracts`` by customer number, service and state, one
page in id order with a cursor, on SQLite and PostgreSQL; and schema migration 3, which fills the
customer number of contracts projected before the column existed (``contracts migrate``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from api_harness import Harness, make_harness

from api.cli import main


def _ids(answer: Any) -> list[str]:
    return [c["id"] for c in answer.json()["data"]]


def test_contracts_are_found_by_customer_number_service_and_state(any_api: Harness) -> None:
    api = any_api
    a = api.concluded("SR-1")  # kintone, concluded
    b = api.apply("SR-1", service="garoon")  # applied
    c = api.apply("SR-2")  # kintone, applied
    rejected = api.post(f"/v1/contracts/{c}/reject", {"article": "Art. 2.4.1"})
    assert rejected.status_code == 200, rejected.text
    d = api.apply("SR-2")  # Art. 2.1: a new contract after the rejected one (its n = 1)
    assert d != c
    search = api.get("/v1/contracts", "auditor", params={"customer_number": "SR-1"})
    assert search.status_code == 200, search.text
    body = search.json()
    assert (body["object"], body["url"], body["has_more"], body["next_cursor"]) == (
        "list", "/v1/contracts", False, None)
    assert _ids(search) == sorted([a, b])
    first = {x["id"]: x for x in body["data"]}[a]
    assert first == {"id": a, "object": "contract_summary", "contract_id": a, "url": f"/v1/contracts/{a}",
                     "customer_number": "SR-1", "service": "kintone", "state": "concluded", "version": 3}
    assert _ids(api.get("/v1/contracts", params={"customer_number": "SR-2"})) == sorted([c, d])
    assert _ids(api.get("/v1/contracts", params={"customer_number": "SR-2", "state": "applied"})) == [d]
    assert _ids(api.get("/v1/contracts", params={"service": "garoon"})) == [b]
    assert _ids(api.get("/v1/contracts", params=[("state", "rejected"), ("state", "concluded")])) == sorted([a, c])
    assert _ids(api.get("/v1/contracts", params={"customer_number": "SR-3"})) == []
    # one page at a time, in id order
    every = sorted([a, b, c, d])
    page = api.get("/v1/contracts", params={"limit": 3}).json()
    assert [x["id"] for x in page["data"]] == every[:3] and page["has_more"] and page["next_cursor"] == every[2]
    rest = api.get("/v1/contracts", params={"limit": 3, "starting_after": page["next_cursor"]}).json()
    assert [x["id"] for x in rest["data"]] == every[3:] and rest["has_more"] is False
    unknown = api.get("/v1/contracts", params={"state": "dormant"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "state.0" and "dormant" not in unknown.text


def test_contracts_are_found_by_a_customer_number_prefix(any_api: Harness) -> None:
    """Rule book 13 (auditors find what they look for): a prefix of the customer number, exact and
    case-sensitive on both databases; ``%`` and ``_`` are characters, not patterns."""
    api = any_api
    a, b, c = api.apply("ACME-1"), api.apply("ACME-20"), api.apply("acme-3")
    d, e = api.apply("AC%E-4"), api.apply("ACXE_5")

    def found(prefix: str) -> list[str]:
        return _ids(api.get("/v1/contracts", "auditor", params={"customer_number_prefix": prefix}))

    assert found("ACME-") == sorted([a, b]) and found("ACME-2") == [b] and found("acme") == [c]
    assert found("AC%") == [d] and found("ACXE_") == [e] and found("AC_") == [] and found("ACME-1") == [a]
    assert found("ACME-20-") == [] and found("AC") == sorted([a, b, d, e])
    combined = api.get("/v1/contracts", params={"customer_number_prefix": "ACME", "state": "applied",
                                                "service": "kintone", "limit": 1}).json()
    assert [x["id"] for x in combined["data"]] == sorted([a, b])[:1] and combined["has_more"] is True
    empty = api.get("/v1/contracts", params={"customer_number_prefix": ""})
    assert empty.status_code == 422 and empty.json()["field"] == "customer_number_prefix"


# --------------------------------------------------------------------------- migration 3


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """A store's database URL (None: SQLite at ``tmp_path/contracts.sqlite``), set for the CLI."""
    monkeypatch.setenv("CONTRACTS_SQLITE_PATH", str(tmp_path / "contracts.sqlite"))
    monkeypatch.setenv("CONTRACTS_MODE", "sandbox")
    if request.param == "sqlite":
        monkeypatch.delenv("CONTRACTS_DATABASE_URL", raising=False)
        yield None
        return
    url = request.getfixturevalue("pg_database_url")
    monkeypatch.setenv("CONTRACTS_DATABASE_URL", url)
    yield url


def _harness(tmp_path: Path, url: str | None) -> Harness:
    return make_harness(tmp_path, database_url=url)


def _as_before_contract_search(tmp_path: Path, url: str | None) -> None:
    """The read table as it was before issue 19: no customer number column, documents without it,
    schema version 2."""
    statements = ["DROP INDEX IF EXISTS rm_contracts_customer", "ALTER TABLE rm_contracts DROP COLUMN customer_number",
                  "DELETE FROM schema_migrations WHERE version = 3"]
    if url is None:
        import sqlite3

        with sqlite3.connect(tmp_path / "contracts.sqlite") as lite:
            docs = lite.execute("SELECT contract_id, doc FROM rm_contracts").fetchall()
            for statement in statements:
                lite.execute(statement)
            for cid, doc in docs:
                lite.execute("UPDATE rm_contracts SET doc = ? WHERE contract_id = ?", (_strip(doc), cid))
        return
    with psycopg.connect(url, autocommit=True) as pg:
        rows = pg.execute("SELECT contract_id, doc FROM rm_contracts").fetchall()
        for statement in statements:
            pg.execute(statement)  # type: ignore[arg-type]  # literal text
        for cid, doc in rows:
            pg.execute("UPDATE rm_contracts SET doc = %s WHERE contract_id = %s", (_strip(doc), cid))


def _strip(doc: str) -> str:
    data = json.loads(doc)
    assert data.pop("customer_number") in ("MIG-1", "MIG-2")
    return json.dumps(data)


def test_migration_3_fills_the_customer_number_of_contracts_projected_before(
        old_store: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _harness(tmp_path, old_store)
    try:
        a = api.concluded("MIG-1")
        b = api.apply("MIG-2")
    finally:
        api.close()
    assert main(["migrate", "--json"]) == 0  # nothing left: the harness migrated the store at start
    capsys.readouterr()
    _as_before_contract_search(tmp_path, old_store)

    assert main(["migrate", "--json"]) == 0
    migrated = json.loads(capsys.readouterr().out)
    assert migrated["applied"] == [3] and migrated["version"] == 3

    api = _harness(tmp_path, old_store)
    try:
        assert _ids(api.get("/v1/contracts", params={"customer_number": "MIG-1"})) == [a]
        assert _ids(api.get("/v1/contracts", params={"customer_number": "MIG-2"})) == [b]
        # the next event of a backfilled contract keeps its customer number (the document has it too)
        assert api.post(f"/v1/contracts/{b}/approve").status_code == 200
        found = api.get("/v1/contracts", params={"customer_number": "MIG-2"}).json()["data"]
        assert [(x["id"], x["state"], x["version"]) for x in found] == [(b, "concluded", 3)]
    finally:
        api.close()
