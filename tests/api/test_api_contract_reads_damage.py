"""A damaged stored event is refused on reads of its contract (issue 14: ``event-undecodable``)
also after the contract's view was rendered once (``api.views.RenderedContracts``, issue 21),
when the process keeps no aggregates (``CONTRACTS_AGGREGATE_CACHE_SIZE=0``: every read folds the
stored events again)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from api_harness import make_harness


def test_issue14_a_damaged_event_is_refused_on_the_next_read_without_an_aggregate_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTRACTS_AGGREGATE_CACHE_SIZE", "0")
    api = make_harness(tmp_path)
    try:
        assert not api.app.repository.cache
        cid = api.concluded("C-990")
        assert api.get(f"/v1/contracts/{cid}").status_code == 200  # rendered once
        with sqlite3.connect(tmp_path / "contracts.sqlite") as conn:
            rows = [rowid for rowid, originator in conn.execute(
                "SELECT rowid, originator_id FROM stored_events WHERE originator_version = 1")
                if str(originator) in (cid, uuid.UUID(cid).hex) or originator == uuid.UUID(cid).bytes]
            changed = conn.execute("UPDATE stored_events SET state = substr(state, 1, length(state) / 2) "
                                   "WHERE rowid = ?", rows[:1]).rowcount
        assert changed == 1
        for path in (f"/v1/contracts/{cid}", f"/v1/contracts/{cid.upper()}"):  # the hot route and FastAPI's
            r = api.get(path)
            assert r.status_code == 500, (path, r.status_code)
            assert r.json()["type"].endswith("event-undecodable")
    finally:
        api.close()
