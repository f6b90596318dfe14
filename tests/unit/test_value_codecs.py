"""One JSON form per value type (``domain.values``), the same in every envelope: the event
store's transcodings, the projection state and the API views."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from eventsourcing.persistence import JSONTranscoder

from api.views import jsonable
from application.projections.codec import decode, encode
from application.transcodings import register_all
from domain.calendar import Month
from domain.catalog import Campaign, PricePlan
from domain.contract import BillingCycle
from domain.values import DATE, MONTH, PRICE_PLAN, UTC_INSTANT

PLAN = PricePlan("kintone", "standard", 2, 1_800, 19_800, 5, 30, 0, False, True,
                 campaign=Campaign(1_500, 3, 16_500))
VALUES = [date(2026, 4, 1), Month(2026, 4), Decimal("0.145"), uuid.UUID(int=7), PLAN]


def test_the_forms() -> None:
    assert (DATE.encode(date(2026, 4, 1)), MONTH.encode(Month(2026, 4))) == ("2026-04-01", "2026-04")
    jst = timezone(timedelta(hours=9))
    assert UTC_INSTANT.encode(datetime(2026, 4, 1, 9, 0, tzinfo=jst)) == "2026-04-01T00:00:00Z"
    assert PRICE_PLAN.decode(PRICE_PLAN.encode(PLAN)) == PLAN


def test_event_store_keeps_its_transcoding_names() -> None:
    """The names are in every stored event: renaming one would make history unreadable."""
    transcoder = JSONTranscoder()
    register_all(transcoder)
    stored = transcoder.encode({"d": date(2026, 4, 1), "m": Month(2026, 4), "c": BillingCycle.ANNUAL, "p": PLAN})
    data = json.loads(stored)
    assert data["d"] == {"_type_": "date_iso", "_data_": "2026-04-01"}
    assert data["m"] == {"_type_": "month", "_data_": "2026-04"}
    assert data["c"] == {"_type_": "billing_cycle", "_data_": "annual"}
    assert data["p"]["_type_"] == "price_plan"
    assert transcoder.decode(stored) == {"d": date(2026, 4, 1), "m": Month(2026, 4), "c": BillingCycle.ANNUAL,
                                         "p": PLAN}


def test_projection_state_and_api_use_the_same_forms() -> None:
    for value in VALUES:
        assert decode(encode(value)) == value
        (inner,) = encode(value).values()
        assert inner == jsonable(value) or isinstance(value, PricePlan)
    assert jsonable(datetime(2026, 4, 1, tzinfo=UTC)) == "2026-04-01T00:00:00Z"
