"""Issued means frozen (rule book 6.1): a rebuild reads issued invoices from their ``InvoiceIssued``
events, so a later catalog edit (a price, the tax rate) changes nothing already issued, on SQLite
and PostgreSQL; only invoices issued after the edit follow the new catalog."""

from __future__ import annotations

import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from projection_kit import jst, paid_contract  # noqa: E402

from domain.calendar import Month  # noqa: E402
from infrastructure.bootstrap import Services, build_read_models, build_services  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402

SAMPLE = Path(__file__).parents[2] / "infrastructure" / "catalog" / "sample.toml"


def _edited_catalog(tmp_path: Path) -> Path:
    """garoon standard: monthly price 1,000 -> 1,300 per user and the reduced 8% rate."""
    text = SAMPLE.read_text(encoding="utf-8")
    old = "[services.garoon.grades.standard]\nrank = 1\nmonthly_price = 1000\n"
    assert old in text
    path = tmp_path / "edited.toml"
    path.write_text(text.replace(old, old.replace("1000", "1300") + 'tax_rate = "0.08"\n'), encoding="utf-8")
    return path


def _reopen(services: Services, catalog: Path, tmp_path: Path, pg_env: dict[str, str] | None) -> Services:
    if pg_env is None:
        return build_services(Settings(database_url=None, sqlite_path=services.settings.sqlite_path,
                                       catalog_path=catalog))
    return build_services(Settings(database_url=None, catalog_path=catalog), env=dict(pg_env))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_rule_book_6_1_catalog_edit_and_rebuild_leave_issued_invoices_byte_identical(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    pg_env = request.getfixturevalue("fresh_pg_env") if backend == "postgres" else None
    first = (build_services(Settings(database_url=None, sqlite_path=tmp_path / "c.sqlite")) if pg_env is None
             else build_services(Settings(database_url=None), env=dict(pg_env)))
    # garoon standard x 100 users, April 2026: 1,000 x 100 = 100,000 at 10% -> 10,000 tax, 110,000
    cid = paid_contract(first.app, "F-1", service="garoon", grade="standard", users=100, until=Month(2026, 4))
    models = build_read_models(first)
    models.runner.catch_up()
    before_rows = models.store.dump()["rm_invoices"]
    (april,) = models.invoices(cid)
    assert (april["total"], april["rate_totals"]) == (
        110000, [{"rate": "0.10", "rate_kind": "standard", "taxable": 100000, "tax": 10000}])
    invoice_id = uuid.UUID(april["invoice_id"])
    before_doc = models.invoice(invoice_id).to_dict()
    models.close()
    first.close()

    second = _reopen(first, _edited_catalog(tmp_path), tmp_path, pg_env)
    try:
        assert second.catalog.plan("garoon", "standard").monthly_price == 1300
        rebuilt = build_read_models(second)
        rebuilt.runner.rebuild(progress=False)  # what ``contracts projections rebuild`` does
        assert rebuilt.store.dump()["rm_invoices"] == before_rows  # byte-identical rows after the rebuild
        assert rebuilt.invoice(invoice_id).to_dict() == before_doc
        # a contract applied for after the edit follows it: 1,300 x 100 = 130,000 at 8% -> 10,400; 140,400
        # (a running contract keeps the plan recorded in its application, spec 2)
        new = paid_contract(second.app, "F-2", service="garoon", grade="standard", users=100, until=Month(2026, 4))
        rebuilt.runner.catch_up()
        (fresh,) = rebuilt.invoices(new)
        assert (fresh["total"], fresh["rate_totals"]) == (
            140400, [{"rate": "0.08", "rate_kind": "reduced", "taxable": 130000, "tax": 10400}])
        assert fresh["number"] == "INV-2026-000002" and fresh["lines"][0]["reduced_rate"] is True
        rebuilt.close()
    finally:
        second.close()


def test_rule_book_6_1_corrections_credit_notes_and_interest_rebuild_to_the_same_rows(
        services: Services, read_models: Any) -> None:
    """Void, correction, credit note, SLA-free interest billing and a waiver: the incremental read rows
    equal the aggregate's invoices and a rebuild gives the same rows (rule book 11)."""
    app = services.app
    a = paid_contract(app, "X-1", service="garoon", grade="standard", users=100, until=Month(2026, 6))
    b = paid_contract(app, "X-2", until=Month(2026, 4))
    c = paid_contract(app, "X-3", until=Month(2026, 4))
    inv = {cid: next(iter(app.get_contract(cid).ledger.invoices)) for cid in (a, b, c)}
    app.void_invoice(b, inv[b], "wrong customer", jst(2026, 4, 2))
    c_april = app.get_contract(c).ledger.invoices[inv[c]]
    app.correct_invoice(c, inv[c], [c_april.lines[0]], "no initial fee", jst(2026, 4, 3))
    app.record_payment(a, inv[a], 110000, date(2026, 7, 1), jst(2026, 7, 1))
    app.advance(a, Month(2026, 7))  # July carries April's 1,310 interest
    may = [i for i, x in app.get_contract(a).ledger.invoices.items() if x.period == "2026-05"][0]
    app.record_payment(a, may, 110000, date(2026, 7, 10), jst(2026, 7, 10))  # due 06-30: 07-01..07-09 = 9 days
    app.waive_interest(a, may, "goodwill", jst(2026, 7, 11))
    app.issue_credit_note(a, inv[a], 1000, "discount", jst(2026, 7, 12))
    read_models.runner.catch_up()
    for cid in (a, b, c):
        from_rows = {i["invoice_id"]: {k: v for k, v in i.items() if k not in ("late_interest", "interest_as_of")}
                     for i in read_models.invoices(cid)}
        from_events = {str(i.invoice_id): i.to_dict() for i in app.get_contract(cid).ledger.invoices.values()}
        assert from_rows == from_events, cid
    may_row = [i for i in read_models.invoices(a) if i["period"] == "2026-05" and i["kind"] == "monthly"][0]
    # floor(110,000 x 0.145 x 9 / 365) = floor(393.29) = 393 waived (Art. 9.4)
    assert (may_row["interest_waived"], may_row["interest_billed"]) == (393, 0)
    incremental = read_models.store.dump()
    read_models.runner.rebuild(progress=False, batch_size=7)
    assert read_models.store.dump() == incremental
