"""The auth middleware's cache of valid API keys (``api.auth.KeyCache``,
``CONTRACTS_API_KEY_CACHE_SECONDS``): a cached key costs no lookup, a key revoked through this
process is refused at once, one revoked by another process once its entry expires, and unknown
keys are never cached (an attacker cannot fill memory with them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from api_harness import Harness

from api.auth import KeyCache, hash_key
from application.ports import ApiKeyRecord
from infrastructure.bootstrap import build_api_store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _count_lookups(api: Harness, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = api.store.find_key

    def find_key(key_hash: str) -> Any:
        calls.append(key_hash)
        return real(key_hash)

    monkeypatch.setattr(api.store, "find_key", find_key)
    return calls


def _cache(api: Harness) -> KeyCache:
    cache: KeyCache = api.client.app.state.ctx.key_cache  # type: ignore[attr-defined]
    return cache


def _name(api: Harness, role: str) -> str:
    record = api.store.find_key(hash_key(api.keys[role]))
    assert record is not None
    return record.name


def test_default_ttl_is_the_setting() -> None:
    from infrastructure.settings import Settings

    assert Settings(database_url=None).api_key_cache_seconds == 5.0


def test_cached_key_works_without_a_lookup(api: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_lookups(api, monkeypatch)
    assert api.get("/v1/clock", "auditor").status_code == 200
    assert len(calls) == 1
    # the database is not asked again: even a store that would fail is not reached
    monkeypatch.setattr(api.store, "find_key", lambda key_hash: pytest.fail("find_key called for a cached key"))
    for _ in range(5):
        assert api.get("/v1/clock", "auditor").status_code == 200
    # the role still comes from the cached record: a cached auditor is still refused a command
    r = api.post("/v1/contracts", {"customer_number": "C", "service": "kintone", "grade": "standard", "users": 1,
                                   "contractor": {}}, role="auditor")
    assert r.status_code == 403


def test_key_revoked_through_this_process_is_refused_at_once(api: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    assert api.get("/v1/clock", "auditor").status_code == 200
    assert api.get("/v1/clock", "billing").status_code == 200
    assert len(_cache(api)) == 2
    calls = _count_lookups(api, monkeypatch)
    assert api.store.revoke_key(_name(api, "auditor"), datetime.now(UTC))
    calls.clear()
    assert api.get("/v1/clock", "auditor").status_code == 401
    assert calls == [hash_key(api.keys["auditor"])]  # looked up again, found revoked
    # the other keys stay cached
    assert api.get("/v1/clock", "billing").status_code == 200
    assert calls == [hash_key(api.keys["auditor"])]


def test_key_revoked_by_another_process_is_refused_once_its_entry_expires(api: Harness) -> None:
    cache = _cache(api)
    clock = FakeClock()
    cache.clock = clock
    assert api.get("/v1/clock", "auditor").status_code == 200
    other = build_api_store(api.services.app.env)  # another process's store: this process hears nothing
    try:
        assert other.revoke_key(_name(api, "auditor"), datetime.now(UTC))
    finally:
        other.close()
    clock.now += cache.ttl - 0.5
    assert api.get("/v1/clock", "auditor").status_code == 200  # the documented window: at most ttl
    clock.now += 0.5
    assert api.get("/v1/clock", "auditor").status_code == 401
    clock.now += 0.1
    assert api.get("/v1/clock", "auditor").status_code == 401
    assert api.get("/v1/clock", "billing").status_code == 200


def test_unknown_keys_are_never_cached(api: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_lookups(api, monkeypatch)
    for i in range(50):
        r = api.client.get("/v1/clock", headers={"X-API-Key": f"ck_unknown_{i}"})
        assert r.status_code == 401
    r = api.client.get("/v1/clock", headers={"X-API-Key": "ck_unknown_0"})
    assert r.status_code == 401
    assert len(calls) == 51  # every unknown key is looked up every time
    assert len(_cache(api)) == 0


def test_ttl_zero_looks_every_request_up(api: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _cache(api)
    monkeypatch.setattr(cache, "ttl", 0.0)
    calls = _count_lookups(api, monkeypatch)
    for _ in range(3):
        assert api.get("/v1/clock", "auditor").status_code == 200
    assert len(calls) == 3 and len(cache) == 0


def _record(name: str) -> ApiKeyRecord:
    return ApiKeyRecord("h-" + name, "billing", name, datetime(2026, 1, 1, tzinfo=UTC), None)


def test_cache_is_bounded_least_recently_used_out() -> None:
    clock = FakeClock()
    cache = KeyCache(60, max_entries=3, clock=clock)
    for name in "abc":
        cache.put("h-" + name, _record(name))
    assert cache.get("h-a") is not None  # a is now the most recently used
    cache.put("h-d", _record("d"))
    assert len(cache) == 3
    assert cache.get("h-b") is None
    assert [cache.get("h-" + n) is not None for n in "acd"] == [True, True, True]
    clock.now += 60
    assert cache.get("h-a") is None and len(cache) == 2  # expired entries are dropped when met


def test_revoked_records_and_lookups_that_raced_a_revocation_are_not_cached() -> None:
    cache = KeyCache(60)
    revoked = ApiKeyRecord("h-x", "billing", "x", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    cache.put("h-x", revoked)
    assert cache.get("h-x") is None
    before = cache.generation
    cache.drop_name("y")  # a revocation while a lookup of "y" was in flight
    cache.put("h-y", _record("y"), before)
    assert cache.get("h-y") is None
    cache.put("h-y", _record("y"), cache.generation)
    assert cache.get("h-y") is not None
    cache.drop_name("y")
    assert cache.get("h-y") is None


def test_setting_bounds() -> None:
    from pydantic import ValidationError

    from infrastructure.settings import Settings

    assert Settings(database_url=None, api_key_cache_seconds=0).api_key_cache_seconds == 0
    with pytest.raises(ValidationError):
        Settings(database_url=None, api_key_cache_seconds=-1)
    with pytest.raises(ValueError):
        KeyCache(-1)
