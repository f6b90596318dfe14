"""The API test harness runs on the schema it tests: on PostgreSQL a new database migrated by the
service's own migrations (``infrastructure.schema.migrate``) through its own PostgreSQL factory, as
``contracts serve`` starts; never a temporary SQLite file beside it (issue 19)."""

from __future__ import annotations

from pathlib import Path

from api_harness import Harness

from infrastructure.postgres_params import POSTGRES_MODULE
from infrastructure.schema import SCHEMA_VERSION, schema_version


def test_rule_book_3_the_harness_store_is_migrated_to_the_latest_schema(any_api: Harness, tmp_path: Path) -> None:
    settings = any_api.services.settings
    assert schema_version(settings) == SCHEMA_VERSION == 3  # 1 baseline, 2 transfers, 3 contract search
    cid = any_api.concluded("HARNESS-1")
    found = any_api.get("/v1/contracts", params={"customer_number": "HARNESS-1"}).json()["data"]
    assert [c["id"] for c in found] == [cid]  # migration 3's column serves the search
    if settings.database_url is not None:
        assert any_api.services.app.env.get("PERSISTENCE_MODULE") == POSTGRES_MODULE  # the service's factory
        assert not (tmp_path / "contracts.sqlite").exists()  # nothing went to a SQLite file
