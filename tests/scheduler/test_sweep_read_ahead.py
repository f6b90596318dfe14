"""Issue 21: a month start reads the next chunk's contracts in a thread while the current chunk is
renewed and saved; the events are those of a sweep that reads each chunk when it gets to it, and a
read ahead is not used once something else may have written the next chunk's contracts.
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from scheduler_kit import CONTRACTOR, World, jst

from domain.calendar import Month
from domain.contract import BillingCycle

APRIL = date(2026, 4, 1)


def _monthly(w: World, count: int) -> list[uuid.UUID]:
    ids = []
    for n in range(count):  # month starts on 2026-04-01 (Art. 8.1: approved in March)
        r = w.app.open_contract(f"RA{n}", "kintone", "light", 5, CONTRACTOR, jst(2026, 3, 9),
                                cycle=BillingCycle.MONTHLY)
        w.app.approve(r.aggregate_id, jst(2026, 3, 24))
        ids.append(r.aggregate_id)
    return ids


def _events(w: World, cid: uuid.UUID) -> list[tuple[str, int, dict[str, Any]]]:
    return [(type(e).__name__, e.originator_version, {k: v for k, v in e.__dict__.items() if k != "timestamp"})
            for e in w.app.events.get(cid)]


def test_the_next_chunk_is_read_while_this_one_is_saved(store: Callable[..., World]) -> None:
    ahead, reference = store(batch_size=2), store(batch_size=2)
    ids = _monthly(ahead, 7)
    assert _monthly(reference, 7) == ids
    threads: list[str] = []
    real = ahead.app.get_contracts

    def reading(chunk: Sequence[uuid.UUID]) -> Any:
        threads.append(threading.current_thread().name)
        return real(chunk)

    ahead.app.get_contracts = reading  # type: ignore[method-assign]
    reference.sweeper.batch_size = 7  # one chunk: nothing to read ahead
    report, expected = ahead.sweep_on(APRIL), reference.sweep_on(APRIL)
    assert report.complete and not report.failures
    assert (report.fired, report.events) == (expected.fired, expected.events) == (7, 14)
    assert sum(name.startswith("sweep-read-ahead") for name in threads) == 3  # chunks 2, 3 and 4 of 4
    for cid in ids:
        assert [(n, v, {k: x for k, x in p.items() if k not in ("document", "document_hash", "recipient")})
                for n, v, p in _events(ahead, cid)] == [
            (n, v, {k: x for k, x in p.items() if k not in ("document", "document_hash", "recipient")})
            for n, v, p in _events(reference, cid)]
        assert ahead.app.get_contract(cid).period_start == Month(2026, 4)


def test_a_read_ahead_is_not_used_after_another_write(store: Callable[..., World]) -> None:
    """Rule book 7's credit step after a chunk may write other contracts of the customers invoiced
    (here: it changes the next chunk's contract too); the next chunk is then read again, so it is
    still saved in one transaction (not refused as stale and sent one by one)."""
    w = store(batch_size=1)
    ids = _monthly(w, 2)
    order = sorted(ids)  # the sweep's order within a day (by id)
    real_credit = w.app.credit_after_issue
    singles: list[uuid.UUID] = []
    real_advance = w.app.advance

    def credit(customers: Iterable[str], at: datetime) -> Any:
        results = real_credit(customers, at)
        if w.app.get_contract(order[0]).period_start == Month(2026, 4) and not singles:
            singles.append(uuid.UUID(int=0))  # once: a write to the next chunk's contract
            return [*results, w.app.change_contractor(order[1], {**CONTRACTOR, "address": "2-2 Moved"},
                                                      jst(2026, 4, 1, 7))]
        return results

    def advance(contract_id: uuid.UUID, month: Month, at: datetime | None = None) -> Any:
        singles.append(contract_id)
        return real_advance(contract_id, month, at)

    w.app.credit_after_issue = credit  # type: ignore[method-assign]
    w.app.advance = advance  # type: ignore[method-assign]
    report = w.sweep_on(APRIL)
    assert report.complete and not report.failures and report.fired == 2
    assert singles == [uuid.UUID(int=0)]  # no contract went the one-by-one way
    assert w.app.get_contract(order[1]).contractor["address"] == "2-2 Moved"
    assert all(w.app.get_contract(cid).period_start == Month(2026, 4) for cid in ids)
