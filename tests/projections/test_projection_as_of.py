"""Spec 11 for auditors: contract state and invoices as they stood at a past instant (by the
events' recorded times) and as they were known at a past notification position."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

from projection_kit import jst, paid_contract

from domain.billing import invoice_id
from domain.calendar import Month, jst_date
from infrastructure.bootstrap import Services
from infrastructure.read_side import ReadModelsImpl


def _now() -> datetime:
    time.sleep(0.01)  # recorded times are wall-clock instants: keep the steps apart
    moment = datetime.now(UTC)
    time.sleep(0.01)
    return moment


def test_contract_and_invoices_as_of_an_instant_and_a_position(services: Services,
                                                               read_models: ReadModelsImpl) -> None:
    app = services.app
    before_anything = _now()
    cid = paid_contract(app, "A-1", service="garoon", grade="standard", users=100, until=Month(2026, 4))
    after_april = _now()
    april_position = app.recorder.max_notification_id()
    read_models.runner.catch_up()
    known_in_april = read_models.invoices(cid, interest_on=date(2026, 7, 1))

    r = app.record_payment(cid, invoice_id(cid, "2026-04"), 110_000, date(2026, 7, 1), jst(2026, 7, 1))
    app.advance(cid, Month(2026, 5))
    read_models.runner.catch_up()

    # by recorded time
    assert read_models.contract_as_of(cid, at=before_anything) is None
    then = read_models.contract_as_of(cid, at=after_april)
    assert then is not None and then.state.value == "active" and then.period_end == Month(2026, 4)
    assert then.version == 5  # Opened, Applied, Approved, ServicePeriodStarted, InvoiceIssued
    now = read_models.contract_as_of(cid, at=datetime.now(UTC))
    assert now is not None and now.version == app.get_contract(cid).version == 8  # + paid, Renewed, issued
    (april,) = read_models.invoices(cid, as_of=after_april)
    assert (april["period"], april["paid"], april["outstanding"]) == ("2026-04", 0, 110_000)
    # interest as of the instant's JST date (Art. 9.4; recorded times are today's wall clock)
    day = jst_date(after_april)
    assert april["interest_as_of"] == day.isoformat()
    assert april["late_interest"] == max(0, 110_000 * 145 * (day - date(2026, 6, 1)).days // 365_000)
    # by position: what the read side knew at the April position, interest to the same day
    assert read_models.invoices_as_of(cid, position=april_position, interest_on=date(2026, 7, 1)) == known_in_april
    assert known_in_april[0]["late_interest"] == 1_310  # unpaid 06-01..06-30: Art. 9.4 example
    at_payment = read_models.invoices_as_of(cid, position=r.position, interest_on=date(2026, 7, 1))
    assert [(i["period"], i["paid"], i["late_interest"]) for i in at_payment] == [("2026-04", 110_000, 1_310)]
    latest = read_models.invoices_as_of(cid, position=app.recorder.max_notification_id(),
                                        interest_on=date(2026, 7, 1))
    assert [i["period"] for i in latest] == ["2026-04", "2026-05"]
    assert read_models.version_at(cid, position=(april_position or 0)) == 5
    assert read_models.version_at(cid, at=before_anything) == 0
