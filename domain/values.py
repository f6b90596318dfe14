"""The JSON forms of the domain's value types: one codec per type.

Every place that writes a value as JSON uses these: the event store's transcodings
(``application.transcodings``), the projection state (``application.projections.codec``,
``domain.deadlines.Timeline``, the pending claims), the claim documents, the audit export
and the API views. Each wraps the forms in its own envelope (the library's ``_type_`` /
``_data_``, the projection's ``$`` tags, plain JSON for the API), but the form of a date, a
month, an amount, an id or a price plan is decided here once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, TypeVar

from domain.calendar import Month
from domain.catalog import Campaign, PricePlan
from domain.contract import BillingCycle, State, TerminationReason
from domain.sla import OutageCause, Remedy

T = TypeVar("T")
E = TypeVar("E", bound=Enum)


@dataclass(frozen=True)
class ValueCodec(Generic[T]):
    """``encode`` turns a value of ``type`` into JSON (str, int, dict ...), ``decode`` back;
    ``name`` is its name in the event store (a transcoding name: never change it)."""

    type: type[T]
    name: str
    encode: Callable[[T], Any]
    decode: Callable[[Any], T]

    def encode_optional(self, value: T | None) -> Any:
        return None if value is None else self.encode(value)

    def decode_optional(self, data: Any) -> T | None:
        return None if data is None else self.decode(data)


def _campaign(data: dict[str, Any]) -> Campaign:
    return Campaign(**data)


def _campaign_dict(campaign: Campaign) -> dict[str, Any]:
    return dict(vars(campaign))


def _utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


DATE: ValueCodec[date] = ValueCodec(date, "date_iso", date.isoformat, date.fromisoformat)
"""A calendar date: ``2026-04-01``."""
MONTH: ValueCodec[Month] = ValueCodec(Month, "month", str, Month.parse)
"""A month: ``2026-04``."""
DECIMAL: ValueCodec[Decimal] = ValueCodec(Decimal, "decimal_str", str, Decimal)
"""A rate or an exact amount as text, never a float: ``0.145``."""
UUID: ValueCodec[uuid.UUID] = ValueCodec(uuid.UUID, "uuid_str", str, uuid.UUID)
"""An id in its canonical text form."""
INSTANT: ValueCodec[datetime] = ValueCodec(datetime, "instant_iso", datetime.isoformat, datetime.fromisoformat)
"""An instant in ISO 8601 with its offset as recorded (projection state and claim documents)."""
UTC_INSTANT: ValueCodec[datetime] = ValueCodec(datetime, "instant_utc", _utc_text, datetime.fromisoformat)
"""An instant as the API shows it: UTC with ``Z``."""
PRICE_PLAN: ValueCodec[PricePlan] = ValueCodec(PricePlan, "price_plan", PricePlan.to_dict, PricePlan.from_dict)
"""The grade snapshot events carry (campaign nested)."""
CAMPAIGN: ValueCodec[Campaign] = ValueCodec(Campaign, "campaign", _campaign_dict, _campaign)


def enum_codec(enum_type: type[E], name: str) -> ValueCodec[E]:
    """An enum as its value (``"monthly"``)."""
    return ValueCodec(enum_type, name, _enum_value, enum_type)


def _enum_value(member: Enum) -> Any:
    return member.value


CONTRACT_STATE = enum_codec(State, "contract_state")
BILLING_CYCLE = enum_codec(BillingCycle, "billing_cycle")
TERMINATION_REASON = enum_codec(TerminationReason, "termination_reason")
OUTAGE_CAUSE = enum_codec(OutageCause, "outage_cause")
REMEDY = enum_codec(Remedy, "remedy")
ENUMS: tuple[ValueCodec[Any], ...] = (CONTRACT_STATE, BILLING_CYCLE, TERMINATION_REASON, OUTAGE_CAUSE, REMEDY)

TEXT_FORMS: dict[type, ValueCodec[Any]] = {c.type: c for c in (DATE, MONTH, DECIMAL, UUID)}
"""The value types whose JSON form is a string, by exact type (a ``datetime`` is not a date here)."""
