"""The spec's billing, interest, SLA-credit and retention examples, read from the projections
(spec 6, 8, 10, 11) on SQLite and on PostgreSQL. Every figure is worked out by hand."""

from __future__ import annotations

from datetime import date

from projection_kit import by_period, jst, lines, paid_contract

from domain.billing import invoice_id
from domain.calendar import Month
from domain.contract import BillingCycle
from domain.sla import OutageCause
from infrastructure.bootstrap import Services
from infrastructure.read_side import ReadModelsImpl

BASE = ("base_fee", "Art. 9.1 base fee")
CAMPAIGN = ("campaign_fee", "Art. 9.2 campaign price")
INITIAL = ("initial_fee", "Art. 9.1 initial fee")
TAX = ("tax", "Consumption Tax Act Art. 57-4(1) item 5: consumption tax per rate")


def test_art_9_4_late_interest_example(services: Services, read_models: ReadModelsImpl) -> None:
    """Art. 9.4: 110,000 yen due 2026-05-31, paid 2026-07-01 -> 30 days ->
    floor(110000 x 0.145 x 30 / 365) = 1,310 yen."""
    app = services.app
    cid = paid_contract(app, "C-INT", service="garoon", grade="standard", users=100)  # 1,000 x 100 + 10% tax
    read_models.runner.catch_up()
    april = by_period(read_models.invoices(cid))["2026-04"]
    assert april["invoice_id"] == str(invoice_id(cid, "2026-04"))  # deterministic id (spec 6)
    assert lines(april) == [(*BASE, 100_000), (*TAX, 10_000)]
    assert (april["total"], april["due_on"], april["issued_on"]) == (110_000, "2026-05-31", "2026-04-01")
    # unpaid as of 2026-06-10: 9 days (06-01..06-09): floor(110000 x 0.145 x 9 / 365) = 393
    assert by_period(read_models.invoices(cid, interest_on=date(2026, 6, 10)))["2026-04"]["late_interest"] == 393
    assert by_period(read_models.invoices(cid, interest_on=date(2026, 5, 31)))["2026-04"]["late_interest"] == 0

    r = app.record_payment(cid, invoice_id(cid, "2026-04"), 110_000, date(2026, 7, 1), jst(2026, 7, 1))
    assert r.position is not None and not read_models.wait_for(r.position, timeout=0)  # no runner yet
    read_models.runner.catch_up()
    assert read_models.wait_for(r.position, timeout=1)
    april = by_period(read_models.invoices(cid, interest_on=date(2026, 7, 1)))["2026-04"]
    assert (april["paid"], april["outstanding"], april["late_interest"]) == (110_000, 0, 1_310)
    assert april["payments"] == [{"paid_on": "2026-07-01", "amount": 110_000}]
    # interest stops on payment: the same 1,310 a year later
    assert by_period(read_models.invoices(cid, interest_on=date(2027, 7, 1)))["2026-04"]["late_interest"] == 1_310


def test_partial_payments_reduce_the_unpaid_amount_from_their_day(services: Services,
                                                                  read_models: ReadModelsImpl) -> None:
    """Art. 9.4: 55,000 paid 06-15 and 55,000 paid 07-01 on 110,000 due 05-31:
    110,000 x 14 days (06-01..06-14) + 55,000 x 16 days (06-15..06-30) = 2,420,000 yen-days;
    floor(2,420,000 x 0.145 / 365) = floor(961.37) = 961."""
    app = services.app
    cid = paid_contract(app, "C-PART", service="garoon", grade="standard", users=100)
    iid = invoice_id(cid, "2026-04")
    app.record_payment(cid, iid, 55_000, date(2026, 6, 15), jst(2026, 6, 15))
    read_models.runner.catch_up()
    half = by_period(read_models.invoices(cid, interest_on=date(2026, 6, 20)))["2026-04"]
    assert (half["paid"], half["outstanding"]) == (55_000, 55_000)
    # as of 06-20: 110,000 x 14 + 55,000 x 5 = 1,815,000 -> floor(721.03) = 721
    assert half["late_interest"] == 721
    app.record_payment(cid, iid, 55_000, date(2026, 7, 1), jst(2026, 7, 1))
    read_models.runner.catch_up()
    paid = by_period(read_models.invoices(cid, interest_on=date(2026, 8, 1)))["2026-04"]
    assert (paid["paid"], paid["outstanding"], paid["late_interest"]) == (110_000, 0, 961)
    assert read_models.outstanding(cid) == 0


def test_campaign_then_normal_price_and_initial_fee_on_the_first_invoice(services: Services,
                                                                         read_models: ReadModelsImpl) -> None:
    """Art. 9.1 / 9.2: kintone standard (sample catalog) 10 users: campaign 1,200 for 3 months,
    then 1,500; initial fee 10,000 on the first invoice only; 10% tax per invoice."""
    cid = paid_contract(services.app, "C-CAMP", until=Month(2026, 7))
    read_models.runner.catch_up()
    inv = by_period(read_models.invoices(cid))
    assert sorted(inv) == ["2026-04", "2026-05", "2026-06", "2026-07"]
    assert lines(inv["2026-04"]) == [(*CAMPAIGN, 12_000), (*INITIAL, 10_000), (*TAX, 2_200)]
    assert inv["2026-04"]["total"] == 24_200
    assert lines(inv["2026-05"]) == [(*CAMPAIGN, 12_000), (*TAX, 1_200)]
    assert lines(inv["2026-06"]) == [(*CAMPAIGN, 12_000), (*TAX, 1_200)]
    assert lines(inv["2026-07"]) == [(*BASE, 15_000), (*TAX, 1_500)]
    assert (inv["2026-07"]["total"], inv["2026-07"]["due_on"]) == (16_500, "2026-08-31")
    assert {i["kind"] for i in inv.values()} == {"monthly"}
    assert [i["period"] for i in read_models.invoices_for_month(Month(2026, 7))] == ["2026-07"]


def test_annual_term_invoice_and_upgrade_difference(services: Services, read_models: ReadModelsImpl) -> None:
    """Annual: one invoice per term (campaign annual price 16,000 x 10 = 160,000, initial fee
    10,000, tax 17,000 = 187,000). Art. 10.1.2: upgrade to premium x 12 from 2026-10:
    floor((30,000 x 12 - 18,000 x 10) x 6 / 12) = 90,000, tax 9,000, due 2026-11-30."""
    app = services.app
    cid = paid_contract(app, "C-ANN", cycle=BillingCycle.ANNUAL)
    change = app.request_change(cid, "premium", 12, Month(2026, 10), jst(2026, 8, 20))
    app.advance(cid, Month(2026, 10))
    read_models.runner.catch_up()
    invoices = read_models.invoices(cid)
    term = next(i for i in invoices if i["kind"] == "annual")
    assert term["period"] == "2026-04..2027-03"
    assert term["invoice_id"] == str(invoice_id(cid, "2026-04..2027-03"))
    assert lines(term) == [(*CAMPAIGN, 160_000), (*INITIAL, 10_000), (*TAX, 17_000)]
    assert (term["total"], term["due_on"]) == (187_000, "2026-05-31")
    upgrade = next(i for i in invoices if i["kind"] == "upgrade")
    assert [(k, r, a) for k, r, a in lines(upgrade)] == [
        ("upgrade_difference", "Art. 10.1.2 upgrade difference", 90_000), (*TAX, 9_000)]
    assert (upgrade["month"], upgrade["issued_on"], upgrade["due_on"], upgrade["total"]) == (
        "2026-10", "2026-10-01", "2026-11-30", 99_000)
    contract = app.get_contract(cid)
    assert change.version < contract.version
    assert upgrade["invoice_id"] in {str(i) for i in contract.ledger.invoices}
    # Art. 20.1 maximum for annual contracts: annual total / 12; premium x 12 from October
    assert read_models.liability_cap(cid, Month(2026, 6)) == 160_000 // 12 == 13_333
    assert read_models.liability_cap(cid, Month(2026, 10)) == 360_000 // 12 == 30_000


def test_sla_credit_claim_minimum_maximum_and_fee_reduction(services: Services,
                                                            read_models: ReadModelsImpl) -> None:
    """Art. 20: a 50-hour provider outage from 2026-06-10 09:00 JST breaches at 06-11 09:00
    (breach date 2026-06-11); credit days floor(50 / 24) = 2; premium x 12 = 30,000 a month:
    minimum floor(30,000 x 2 / 30) = 2,000, maximum 30,000; default remedy: fee reduction of
    the minimum on the next invoice: 30,000 - 2,000 = 28,000 + tax 2,800 = 30,800."""
    app = services.app
    cid = paid_contract(app, "C-SLA", grade="premium", users=12, until=Month(2026, 6))
    outage = app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK,
                               jst(2026, 6, 12, 12))
    app.claim_sla(cid, outage.aggregate_id, jst(2026, 6, 20), True, True, "ticket 1")
    read_models.runner.catch_up()
    (pending,) = read_models.claims(cid)
    assert (pending["status"], pending["eligible"], pending["reason"]) == ("pending", True, None)
    assert (pending["breach_date"], pending["credit_days"], pending["minimum"], pending["maximum"]) == (
        "2026-06-11", 2, 2_000, 30_000)
    assert pending["liability_cap"] == 30_000  # Art. 21.1
    assert [d.kind for d in read_models.deadlines_until(date(2026, 8, 11)) if d.aggregate_id == cid
            and d.kind == "sla_window_end"] == ["sla_window_end"]

    claim_id = app.claim_id(cid, outage.aggregate_id)
    app.decide_claim(cid, claim_id, None, None, jst(2026, 6, 22))
    app.advance(cid, Month(2026, 7))
    read_models.runner.catch_up()
    (granted,) = read_models.claims(cid)
    assert (granted["status"], granted["remedy"], granted["amount"], granted["credit_days"]) == (
        "granted", "fee_reduction", 2_000, 2)
    july = by_period(read_models.invoices(cid))["2026-07"]
    assert lines(july) == [(*BASE, 30_000), ("sla_credit", "Art. 20.1 SLA fee reduction", -2_000), (*TAX, 2_800)]
    assert july["total"] == 30_800
    assert not [d for d in read_models.deadlines_until(date(2027, 1, 1)) if d.kind == "sla_window_end"]


def test_sla_ineligible_claims_name_their_reason(services: Services, read_models: ReadModelsImpl) -> None:
    """Art. 20.1 too short, Art. 17 / 20.2 excluded cause, Art. 20.3 late claim (breach date + 60
    days is the last valid day) and missing proof, Art. 20.2.1 trial and beta."""
    app = services.app
    cid = paid_contract(app, "C-NOT", grade="premium", users=12, until=Month(2026, 8))

    def outage(start: tuple[int, int, int, int], hours: int, cause: OutageCause = OutageCause.PROVIDER_NETWORK,
               service: str = "kintone") -> object:
        from datetime import timedelta
        began = jst(*start)
        return app.record_outage(service, began, began + timedelta(hours=hours), cause, jst(2026, 8, 20)).aggregate_id

    too_short = outage((2026, 6, 1, 9), 24)  # exactly 24 hours: not longer than 24
    excluded = outage((2026, 6, 3, 9), 30, OutageCause.SCHEDULED_MAINTENANCE)
    # breach date 2026-06-06; last valid claim day 2026-08-05 (ends as in_time starts: no overlap, spec 8)
    late = outage((2026, 6, 5, 8), 25)
    in_time = outage((2026, 6, 6, 9), 30)  # breach date 2026-06-07; last valid claim day 2026-08-06
    no_proof = outage((2026, 6, 8, 9), 30)
    app.claim_sla(cid, too_short, jst(2026, 6, 10), True, True)
    app.claim_sla(cid, excluded, jst(2026, 6, 10), True, True)
    app.claim_sla(cid, late, jst(2026, 8, 6), True, True)
    app.claim_sla(cid, in_time, jst(2026, 8, 6), True, True)
    app.claim_sla(cid, no_proof, jst(2026, 6, 10), False, True)

    trial = app.open_contract("C-TRIAL", "kintone", "light", 5, {"name": "T"}, jst(2026, 6, 1), trial=True)
    app.claim_sla(trial.aggregate_id, in_time, jst(2026, 6, 10), True, True)
    beta = paid_contract(app, "C-BETA", service="mailwise-beta", grade="standard", users=5, until=Month(2026, 6))
    beta_outage = outage((2026, 6, 6, 9), 30, service="mailwise-beta")
    app.claim_sla(beta, beta_outage, jst(2026, 6, 10), True, True)
    read_models.runner.catch_up()

    reasons = {c["outage_id"]: (c["eligible"], c["reason"], c["credit_days"], c["minimum"], c["maximum"])
               for c in read_models.claims(cid)}
    assert reasons[str(too_short)] == (
        False, "Art. 20.1: outage not longer than 24 consecutive hours (too short)", 0, 0, 0)
    assert reasons[str(excluded)] == (False, "Art. 20.2 / Art. 17: excluded cause scheduled_maintenance", 0, 0, 0)
    assert reasons[str(late)] == (False, "Art. 20.3: claim received after 60 days from the breach date (late claim)",
                                  0, 0, 0)
    # 30 hours -> 1 credit day; June has 30 days: floor(30,000 x 1 / 30) = 1,000
    assert reasons[str(in_time)] == (True, None, 1, 1_000, 30_000)
    assert reasons[str(no_proof)] == (False, "Art. 20.3: missing proof of payment", 0, 0, 0)
    (trial_claim,) = read_models.claims(trial.aggregate_id)
    assert (trial_claim["eligible"], trial_claim["reason"], trial_claim["liability_cap"]) == (
        False, "Art. 20.2.1: trials are not covered", 0)
    (beta_claim,) = read_models.claims(beta)
    assert (beta_claim["eligible"], beta_claim["reason"], beta_claim["liability_cap"]) == (
        False, "Art. 20.2.1: beta services are not covered", 0)
    # Art. 21.1 liability cap per contract and month
    assert read_models.liability_cap(cid, Month(2026, 6)) == 30_000
    assert read_models.liability_cap(beta, Month(2026, 6)) == 0
    assert read_models.liability_cap(trial.aggregate_id, Month(2026, 6)) == 0

    app.decide_claim(cid, app.claim_id(cid, late), None, None, jst(2026, 8, 7))
    read_models.runner.catch_up()
    decided = next(c for c in read_models.claims(cid) if c["outage_id"] == str(late))
    assert (decided["status"], decided["eligible"], decided["remedy"]) == ("rejected", False, None)
    assert decided["reason"].startswith("Art. 20.3")
    assert read_models.claim_contract(app.claim_id(cid, late)) == cid


def test_retention_deadline_after_termination_and_trial_expiry(services: Services,
                                                               read_models: ReadModelsImpl) -> None:
    """Art. 15.3: noticed on 2026-07-10 (in time for August) -> last month 2026-08, ended 08-31,
    data deleted 60 days later: 2026-10-30. Art. 15.5: a light trial from 2026-03-02 ends
    2026-04-01; expired then, its data goes on 2026-05-31."""
    app = services.app
    cid = paid_contract(app, "C-RET", until=Month(2026, 7))
    app.notice_termination(cid, None, jst(2026, 7, 10))
    app.advance(cid, Month(2026, 9))
    trial = app.open_contract("C-TRX", "kintone", "light", 5, {"name": "T"}, jst(2026, 3, 2), trial=True)
    read_models.runner.catch_up()
    assert [(d.due_on, d.kind) for d in read_models.deadlines_until(date(2026, 12, 31))
            if d.aggregate_id == trial.aggregate_id] == [(date(2026, 4, 1), "trial_end")]
    app.expire_trial(trial.aggregate_id, date(2026, 4, 1))
    read_models.runner.catch_up()

    def retention(aggregate_id: object) -> list[tuple[date, str]]:
        kinds = ("stored_data_deletion", "contractor_data_erasure", "trial_end", "month_start")
        return [(d.due_on, d.kind) for d in read_models.deadlines_until(date(2040, 12, 31))
                if d.aggregate_id == aggregate_id and d.kind in kinds]

    # every invoice (April to August) is unpaid: no contractor-data erasure date while owed (spec 10)
    assert retention(cid) == [(date(2026, 10, 30), "stored_data_deletion")]
    # the trial never had an invoice: its contractor data goes with the stored data
    assert retention(trial.aggregate_id) == [(date(2026, 5, 31), "contractor_data_erasure"),
                                             (date(2026, 5, 31), "stored_data_deletion")]
    app.delete_stored_data(cid, date(2026, 10, 30))
    read_models.runner.catch_up()
    assert retention(cid) == []
    # the invoices survive deletion of the personal data (amounts and dates intact)
    assert [i["period"] for i in read_models.invoices(cid)] == ["2026-04", "2026-05", "2026-06", "2026-07",
                                                                "2026-08"]
