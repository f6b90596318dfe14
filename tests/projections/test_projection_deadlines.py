"""Deadlines projection (spec 11): every open action date with its kind, indexed by date, so that
'what is due up to T' is one indexed range scan returning exactly the due ones."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from projection_kit import jst, paid_contract

from application.projections.ports import Changes, DeadlineRow
from domain.billing import invoice_id
from domain.calendar import Month
from infrastructure.bootstrap import Services, build_read_models
from infrastructure.read_side import ReadModelsImpl


def _of(read_models: ReadModelsImpl, aggregate_id: uuid.UUID) -> list[tuple[date, str, str]]:
    return [(d.due_on, d.kind, d.ref) for d in read_models.deadlines_until(date(2099, 12, 31))
            if d.aggregate_id == aggregate_id]


def test_deadlines_follow_the_contract_through_non_payment(services: Services, read_models: ReadModelsImpl) -> None:
    """Art. 8: month starts; Art. 9.5 / spec 7: overdue the day after the due date, suspension
    notice 14 days after the due date, stop 14 days after the notice; paid in full -> lifted."""
    app = services.app
    cid = paid_contract(app, "D-1", service="garoon", grade="standard", users=100, until=None)
    read_models.runner.catch_up()
    assert _of(read_models, cid) == [(date(2026, 4, 1), "month_start", "2026-04")]

    app.advance(cid, Month(2026, 5))
    read_models.runner.catch_up()
    april, may = str(invoice_id(cid, "2026-04")), str(invoice_id(cid, "2026-05"))
    assert _of(read_models, cid) == [
        (date(2026, 5, 24), "payment_reminder", april),  # rule book 7: 7 days before 05-31
        (date(2026, 6, 1), "month_start", "2026-06"),
        (date(2026, 6, 1), "payment_overdue", april),  # due 2026-05-31
        (date(2026, 6, 7), "overdue_reminder", april),  # 7 days after 05-31
        (date(2026, 6, 23), "payment_reminder", may),  # 7 days before 06-30
        (date(2026, 7, 1), "payment_overdue", may),  # due 2026-06-30
        (date(2026, 7, 7), "overdue_reminder", may),
    ]
    # exactly the due ones, ordered (due_on, kind, aggregate, ref); the limit cuts the page
    assert [(d.due_on, d.kind) for d in read_models.deadlines_until(date(2026, 6, 1))] == [
        (date(2026, 5, 24), "payment_reminder"), (date(2026, 6, 1), "month_start"),
        (date(2026, 6, 1), "payment_overdue")]
    assert len(read_models.deadlines_until(date(2026, 6, 1), limit=1)) == 1
    assert read_models.deadlines_until(date(2026, 5, 23)) == []

    app.mark_overdue(cid, invoice_id(cid, "2026-04"), date(2026, 6, 1))
    read_models.runner.catch_up()
    assert (date(2026, 6, 14), "suspension_notice", april) in _of(read_models, cid)  # 05-31 + 14 days
    assert (date(2026, 6, 1), "payment_overdue", april) not in _of(read_models, cid)

    app.notice_suspension(cid, date(2026, 6, 14))
    read_models.runner.catch_up()
    assert [d for d in _of(read_models, cid) if d[1].startswith("suspension")] == [
        (date(2026, 6, 28), "suspension_stop", "")]  # 06-14 + 14 days

    app.record_payment(cid, invoice_id(cid, "2026-04"), 110_000, date(2026, 6, 20), jst(2026, 6, 20))
    read_models.runner.catch_up()
    assert app.get_contract(cid).state.value == "active"  # SuspensionLifted
    assert _of(read_models, cid) == [  # April paid: its reminders go too (the one before was never fired here)
        (date(2026, 6, 1), "month_start", "2026-06"),
        (date(2026, 6, 23), "payment_reminder", may),
        (date(2026, 7, 1), "payment_overdue", may),
        (date(2026, 7, 7), "overdue_reminder", may),
    ]


def test_change_effective_month_and_service_wide_deadlines(services: Services, read_models: ReadModelsImpl) -> None:
    """Art. 10: a change effective 2026-10 in an annual term is the next month start;
    Art. 18 discontinuation date and Art. 28 terms change effective date until carried out."""
    app = services.app
    from domain.contract import BillingCycle

    cid = paid_contract(app, "D-2", cycle=BillingCycle.ANNUAL)
    app.request_change(cid, "premium", 12, Month(2026, 10), jst(2026, 8, 20))
    disc = app.announce_discontinuation("garoon", date(2026, 12, 31), jst(2026, 6, 1))
    terms = app.announce_terms_change("v2", date(2026, 9, 1), "new terms", jst(2026, 6, 1))
    read_models.runner.catch_up()
    assert [d for d in _of(read_models, cid) if d[1] == "month_start"] == [(date(2026, 10, 1), "month_start",
                                                                            "2026-10")]
    assert _of(read_models, disc.aggregate_id) == [(date(2026, 12, 31), "discontinuation", "garoon")]
    assert _of(read_models, terms.aggregate_id) == [(date(2026, 9, 1), "terms_change_effective", "v2")]
    app.advance(cid, Month(2026, 10))
    app.terms_change_takes_effect("v2", date(2026, 9, 1))
    app.complete_discontinuation("garoon", date(2026, 12, 31))
    read_models.runner.catch_up()
    assert [d for d in _of(read_models, cid) if d[1] == "month_start"] == [(date(2027, 4, 1), "month_start",
                                                                            "2027-04")]  # renewal
    assert _of(read_models, disc.aggregate_id) == []
    assert _of(read_models, terms.aggregate_id) == []


def _fill(read_models: ReadModelsImpl, n: int) -> None:
    """n synthetic open deadlines spread over 1,000 days from 2026-01-01 (test schema only)."""
    rows = [DeadlineRow(date(2026, 1, 1) + timedelta(days=i % 1000), "payment_overdue", uuid.UUID(int=i + 1), "x")
            for i in range(n)]
    read_models.store.commit(Changes(deadlines_added=rows), 0, 1)


def test_due_query_is_an_index_range_scan_on_sqlite(sqlite_services: Services) -> None:
    models = build_read_models(sqlite_services)
    _fill(models, 20_000)
    plan = " ".join(str(r) for r in models.store._rows(  # type: ignore[attr-defined]
        "EXPLAIN QUERY PLAN SELECT due_on, kind, aggregate_id, ref FROM rm_deadlines WHERE due_on <= ? "
        "ORDER BY due_on, kind, aggregate_id, ref LIMIT 100", ("2026-01-10",)))
    assert "USING COVERING INDEX rm_deadlines_due (due_on<?)" in plan
    assert "TEMP B-TREE" not in plan  # no sort: the index gives the order
    due = models.deadlines_until(date(2026, 1, 10))
    assert len(due) == 200 and all(d.due_on <= date(2026, 1, 10) for d in due)  # 10 days x 20 a day


@pytest.mark.postgres
def test_due_query_is_an_index_scan_on_postgres(pg_services: Services) -> None:
    models = build_read_models(pg_services)
    _fill(models, 50_000)
    store = models.store
    with store.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        conn.execute(f"VACUUM ANALYZE {store.prefix}rm_deadlines")  # type: ignore[attr-defined]

    def plan(limit: str) -> str:
        return "\n".join(r[0] for r in store._rows(  # type: ignore[attr-defined]
            f"EXPLAIN SELECT due_on, kind, aggregate_id, ref FROM {store.prefix}rm_deadlines "  # type: ignore
            f"WHERE due_on <= %s ORDER BY due_on, kind, aggregate_id, ref {limit}", (date(2026, 1, 10),)))

    page = plan("LIMIT 100")  # what the scheduler asks: a page of the due ones, in order
    assert "Index Only Scan using rm_deadlines_due" in page and "Index Cond: (due_on <=" in page, page
    assert "Seq Scan" not in page and "Sort" not in page, page
    everything = plan("")
    assert "rm_deadlines_due" in everything and "Index Cond: (due_on <=" in everything, everything
    assert "Seq Scan" not in everything, everything
    due = models.deadlines_until(date(2026, 1, 10))
    assert len(due) == 500 and due == sorted(due)  # 10 days x 50 a day, in (due_on, kind, id) order
