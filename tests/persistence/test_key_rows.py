"""Issue 14.1: with ``CONTRACTS_MASTER_KEY`` set, a ``contract_keys`` row without the master key's
wrap is refused (a clear error, reported once in the log), never used; keys created before the
master key was configured are wrapped deliberately, once, by ``KeyStore.wrap_unwrapped_keys``."""

from __future__ import annotations

import base64
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.contract import BillingCycle
from infrastructure.bootstrap import SQLITE_MODULE, build_services
from infrastructure.personal_data import ContractKeyError
from infrastructure.settings import Settings

PERSON = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo", "contact_email": "a@example.invalid"}


def test_an_unwrapped_key_row_is_refused_and_reported_once_until_wrapped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.sqlite"
    env = {"PERSISTENCE_MODULE": SQLITE_MODULE, "SQLITE_DBNAME": str(path)}
    settings = Settings(sqlite_path=path, database_url=None)
    plain = build_services(settings, dict(env))  # no master key: the data key is stored as is
    try:
        at = datetime(2026, 3, 24, 1, 0, tzinfo=UTC)
        cid = plain.app.open_contract("CUST-KEYS", "kintone", "standard", 10, PERSON, at,
                                      cycle=BillingCycle.MONTHLY).aggregate_id
    finally:
        plain.close()
    master = base64.b64encode(os.urandom(32)).decode()
    guarded = build_services(settings, {**env, "CONTRACTS_MASTER_KEY": master})
    try:
        keys = guarded.app.factory.keys  # type: ignore[attr-defined]
        with caplog.at_level(logging.ERROR, logger="infrastructure.personal_data"):
            for _ in range(3):
                with pytest.raises(ContractKeyError, match="not wrapped by CONTRACTS_MASTER_KEY: refused"):
                    guarded.app.get_contract(cid)
                keys._cache.clear()  # each attempt reads the row again
        reports = [r for r in caplog.records if str(cid) in r.getMessage()]
        assert len(reports) == 1 and "personal fields are unreadable" in reports[0].getMessage()
        assert keys.wrap_unwrapped_keys() == 2  # the contract's records key and contacts key (issue 15)
        assert keys.wrap_unwrapped_keys() == 0
        assert guarded.app.get_contract(cid).contractor == PERSON
    finally:
        guarded.close()
    again = build_services(settings, {**env, "CONTRACTS_MASTER_KEY": master})
    try:
        assert again.app.get_contract(cid).contractor == PERSON  # wrapped for good
    finally:
        again.close()
