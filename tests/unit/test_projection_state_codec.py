"""The projection state's ledger encoding (issue 21): plain fields written as they are, plans and
campaigns decoded once and encoded once per object, and the same text as before for the same state."""

from __future__ import annotations

import uuid
from decimal import Decimal

from application.projections import codec
from application.projections.codec import decode, decode_ledger, dumps, encode_ledger
from domain.billing import Ledger
from domain.calendar import Month
from domain.catalog import Campaign, PricePlan

CAMPAIGN = Campaign(1_200, 3, 16_000)
PLAN = PricePlan("kintone", "standard", 2, 1_500, 18_000, 5, 30, 10_000, False, True, campaign=CAMPAIGN)
CONTRACT = uuid.UUID("5edf2c27-de90-5d5b-9088-8f5f1f0926fe")
# written by hand: what the state of a monthly contract in its second month holds (sorted keys)
LEDGER_JSON = (
    '{"campaign":{"$camp":{"annual_price":16000,"monthly_price":1200,"months":3}},'
    '"contract_id":{"$u":"5edf2c27-de90-5d5b-9088-8f5f1f0926fe"},"cycle":"monthly","first_month":{"$m":"2026-02"},'
    '"initial_fee_charged":true,"monthly_fees":{"$mrl":[["2026-02",2,12000]]},'
    '"pending_credits":[{"$t":["claim-1",300]}],'
    '"plan":{"$plan":{"annual_price":18000,"beta":false,"campaign":{"annual_price":16000,"monthly_price":1200,'
    '"months":3},"grade":"standard","initial_fee":10000,"min_users":5,"monthly_price":1500,"rank":2,'
    '"service":"kintone","sla_eligible":true,"store":false,"tax_rate":"0.10","trial_days":30}},'
    '"term_end":null,"term_start":null,"users":10}'
)


def _ledger() -> Ledger:
    return Ledger(CONTRACT, cycle="monthly", plan=PLAN, users=10, campaign=CAMPAIGN, first_month=Month(2026, 2),
                  initial_fee_charged=True, pending_credits=[("claim-1", 300)],
                  monthly_fees={Month(2026, 2): 12_000, Month(2026, 3): 12_000})


def test_ledger_text_is_unchanged() -> None:
    assert dumps(encode_ledger(_ledger())) == LEDGER_JSON


def test_ledger_round_trip() -> None:
    back = decode_ledger(codec.loads(LEDGER_JSON))
    assert back == _ledger()
    assert back.plan is not None and back.plan.tax_rate == Decimal("0.10")
    assert back.monthly_fees == {Month(2026, 2): 12_000, Month(2026, 3): 12_000}
    assert back.pending_credits == [("claim-1", 300)]
    assert dumps(encode_ledger(back)) == LEDGER_JSON


def test_plans_and_campaigns_decoded_once_and_shared() -> None:
    first = decode_ledger(codec.loads(LEDGER_JSON))
    second = decode_ledger(codec.loads(LEDGER_JSON))
    assert first.plan is second.plan and first.campaign is second.campaign
    assert first.plan == PLAN and first.campaign == CAMPAIGN
    # a plan of other prices is its own value, not the remembered one
    other = decode({"$plan": {**PLAN.to_dict(), "monthly_price": 1_600}})
    assert isinstance(other, PricePlan) and other.monthly_price == 1_600 and other is not first.plan
    # the same fields under another tag are not taken for a plan
    assert decode({"$camp": {"annual_price": 16000, "monthly_price": 1200, "months": 3}}) is first.campaign


def test_encoded_once_per_object_and_bounded() -> None:
    codec._ENCODED.clear()
    a = PricePlan("kintone", "standard", 2, 1_500, 18_000, 5, 30, 10_000, False, True)
    b = PricePlan("kintone", "standard", 2, 1_500, 18_000, 5, 30, 10_000, False, True)  # equal, another object
    assert codec.encode(a)["$plan"] is codec.encode(a)["$plan"]  # made once for the object
    assert codec.encode(b)["$plan"] is not codec.encode(a)["$plan"]  # an equal plan gets its own
    assert codec.encode(a) == codec.encode(b) == {"$plan": {
        "service": "kintone", "grade": "standard", "rank": 2, "monthly_price": 1500, "annual_price": 18000,
        "min_users": 5, "trial_days": 30, "initial_fee": 10000, "beta": False, "sla_eligible": True, "store": False,
        "campaign": None, "tax_rate": "0.10"}}
    for i in range(codec._LIMIT + 5):
        codec.encode(Campaign(i, 1))
    assert len(codec._ENCODED) <= codec._LIMIT
    for i in range(codec._LIMIT + 5):
        decode({"$camp": {"monthly_price": i, "months": 1, "annual_price": None}})
    assert len(codec._DECODED) <= codec._LIMIT
