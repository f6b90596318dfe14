"""Transcodings for the values our events carry beyond JSON, UUID, Decimal and datetime."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.calendar import Month
from domain.catalog import PricePlan
from domain.contract import BillingCycle, State, TerminationReason
from domain.sla import OutageCause, Remedy


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class MonthAsText(Transcoding):
    type = Month
    name = "month"

    def encode(self, obj: Month) -> str:
        return str(obj)

    def decode(self, data: str) -> Month:
        return Month.parse(data)


class PricePlanAsDict(Transcoding):
    type = PricePlan
    name = "price_plan"

    def encode(self, obj: PricePlan) -> dict[str, Any]:
        return obj.to_dict()

    def decode(self, data: dict[str, Any]) -> PricePlan:
        return PricePlan.from_dict(data)


def enum_transcoding(enum_type: type[Enum], name: str) -> Transcoding:
    class EnumAsValue(Transcoding):
        type = enum_type

        def encode(self, obj: Enum) -> Any:
            return obj.value

        def decode(self, data: Any) -> Enum:
            return enum_type(data)

    EnumAsValue.name = name
    return EnumAsValue()


ENUMS: tuple[tuple[type[Enum], str], ...] = (
    (State, "contract_state"),
    (BillingCycle, "billing_cycle"),
    (TerminationReason, "termination_reason"),
    (OutageCause, "outage_cause"),
    (Remedy, "remedy"),
)


def register_all(transcoder: JSONTranscoder) -> None:
    transcoder.register(DateAsISO())
    transcoder.register(MonthAsText())
    transcoder.register(PricePlanAsDict())
    for enum_type, name in ENUMS:
        transcoder.register(enum_transcoding(enum_type, name))
