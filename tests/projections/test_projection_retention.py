"""Rule book 11 deadlines for rule book 10 retention (issue 15), on SQLite and PostgreSQL.

Worked by hand: monthly kintone standard x 10 from April 2026, termination noticed for June:
ended 2026-06-30, invoices 2026-04 (24,200), 2026-05 and 2026-06 (13,200 each, issued on the 1st).
- stored_data_deletion (Art. 15.3): 2026-06-30 + 60 days = 2026-08-29.
- contractor_data_erasure (Art. 13, records rule: Corporate Tax Act 7 years from the day after the
  filing deadline, 2027-05-31, of the fiscal year ending 2027-03-31 that holds the last invoice,
  2026-06-01): kept until 2034-05-31, due 2034-06-01; while June is unpaid there is no date.
- Art. 9.4, rule book 6 (issue 16): late interest is billed once the principal is paid, on an interest
  invoice at once (the contract has ended). Paid 2026-07-20: April (24,200, due 05-31) 49 days ->
  floor(24200 x 0.145 x 49 / 365) = 471, May (13,200, due 06-30) 19 days -> floor(13200 x 0.145 x 19 / 365)
  = 99: each on the interest invoice of the payment that settled it, issued 2026-07-20 (same fiscal
  year). June paid 2034-05-10 (2,839 days late) ->
  floor(13200 x 0.145 x 2839 / 365) = 14,887 on an interest invoice issued 2034-05-10: the last
  document, fiscal year ending 2035-03-31 (filed by 2035-05-31), kept until 2042-05-31, erasure due
  2042-06-01 once paid.
"""

from __future__ import annotations

import uuid
from datetime import date

from projection_kit import jst, paid_contract

from domain.calendar import Month
from infrastructure.bootstrap import Services
from infrastructure.read_side import ReadModelsImpl

KINDS = ("stored_data_deletion", "contractor_data_erasure")


def _retention(read_models: ReadModelsImpl, cid: uuid.UUID) -> list[tuple[date, str]]:
    read_models.runner.catch_up()
    return [(d.due_on, d.kind) for d in read_models.deadlines_until(date(2050, 12, 31))
            if d.aggregate_id == cid and d.kind in KINDS]


def _pay_interest(services: Services, cid: uuid.UUID, on: date, *expected: int) -> None:
    """The interest invoices issued ``on`` (one per payment that settled a late invoice; their totals
    ``expected``, worked above), paid the same day."""
    app = services.app
    interest = [i for i in app.get_contract(cid).ledger.invoices.values() if i.kind == "interest" and i.issued_on == on]
    assert [i.total for i in interest] == list(expected)
    for invoice in interest:
        app.record_payment(cid, invoice.invoice_id, invoice.total, on, jst(on.year, on.month, on.day))


def _ended_2026_06_30(services: Services, customer: str) -> uuid.UUID:
    app = services.app
    cid = paid_contract(app, customer, until=Month(2026, 6))
    app.notice_termination(cid, Month(2026, 6), jst(2026, 5, 1))
    app.advance(cid, Month(2026, 7))
    assert app.get_contract(cid).ended_on == date(2026, 6, 30)
    return cid


def test_spec_11_art_15_3_and_art_13_deadlines_of_the_worked_example(services: Services,
                                                                     read_models: ReadModelsImpl) -> None:
    app = services.app
    cid = _ended_2026_06_30(services, "C-RET-PAID")
    for inv in list(app.get_contract(cid).ledger.invoices.values()):
        app.record_payment(cid, inv.invoice_id, inv.total, date(2026, 7, 20), jst(2026, 7, 20))
    assert _retention(read_models, cid) == [(date(2026, 8, 29), "stored_data_deletion")]  # the interest is owed
    _pay_interest(services, cid, date(2026, 7, 20), 471, 99)
    assert _retention(read_models, cid) == [(date(2026, 8, 29), "stored_data_deletion"),
                                            (date(2034, 6, 1), "contractor_data_erasure")]
    app.delete_stored_data(cid, date(2026, 8, 29))
    assert _retention(read_models, cid) == [(date(2034, 6, 1), "contractor_data_erasure")]
    app.erase_contractor_data(cid, date(2034, 6, 1))
    assert _retention(read_models, cid) == []
    assert sorted(i["total"] for i in read_models.invoices(cid)) == [99, 471, 13200, 13200, 24200]  # amounts stay


def test_spec_11_unpaid_invoice_moves_the_erasure_when_settled(services: Services,
                                                               read_models: ReadModelsImpl) -> None:
    app = services.app
    cid = _ended_2026_06_30(services, "C-RET-UNPAID")
    invoices = {i.period: i for i in app.get_contract(cid).ledger.invoices.values()}
    for period in ("2026-04", "2026-05"):
        app.record_payment(cid, invoices[period].invoice_id, invoices[period].total, date(2026, 7, 20),
                           jst(2026, 7, 20))
    _pay_interest(services, cid, date(2026, 7, 20), 471, 99)
    assert _retention(read_models, cid) == [(date(2026, 8, 29), "stored_data_deletion")]  # June owed: no date
    app.record_payment(cid, invoices["2026-06"].invoice_id, 13200, date(2034, 5, 10), jst(2034, 5, 10))
    assert _retention(read_models, cid) == [(date(2026, 8, 29), "stored_data_deletion")]  # June's interest owed
    _pay_interest(services, cid, date(2034, 5, 10), 14887)
    assert _retention(read_models, cid) == [(date(2026, 8, 29), "stored_data_deletion"),
                                            (date(2042, 6, 1), "contractor_data_erasure")]


def test_spec_11_privacy_request_keeps_the_erasure_deadline(services: Services,
                                                            read_models: ReadModelsImpl) -> None:
    app = services.app
    cid = _ended_2026_06_30(services, "C-RET-REQ")
    for inv in list(app.get_contract(cid).ledger.invoices.values()):
        app.record_payment(cid, inv.invoice_id, inv.total, date(2026, 7, 20), jst(2026, 7, 20))
    _pay_interest(services, cid, date(2026, 7, 20), 471, 99)
    _, answer = app.answer_privacy_request(cid, "erase", jst(2026, 8, 1))
    assert answer["kept_until"] == date(2034, 5, 31)
    assert _retention(read_models, cid)[-1] == (date(2034, 6, 1), "contractor_data_erasure")
