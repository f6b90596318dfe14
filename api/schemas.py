"""Request bodies and documented response shapes.

Every request model forbids unknown fields; numbers and booleans are strict (``"5"`` is not
5, ``1`` is not ``true``); money is integer yen within sane bounds; dates are ISO 8601
``YYYY-MM-DD``; instants ISO 8601 with an offset (``2026-04-01T00:00:00+09:00`` or ``...Z``);
months ``YYYY-MM``.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

from api.resources import Problem
from domain.calendar import Month
from domain.contract import FOR_CAUSE_ARTICLES, REJECTION_ARTICLES
from domain.errors import InvalidInput
from domain.sla import OutageCause, Remedy

MAX_YEN = 10**12  # a trillion yen: far above any real invoice, far below integer trouble
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")


def _month(value: Any) -> Month:
    if isinstance(value, Month):
        return value
    if not isinstance(value, str) or not re.match(MONTH_PATTERN, value):
        raise ValueError("must be a month written YYYY-MM")
    try:
        return Month.parse(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _date_text(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be an ISO 8601 date YYYY-MM-DD")
    return value


def _instant_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _INSTANT.match(value):
        raise ValueError("must be an ISO 8601 instant with an offset, e.g. 2026-04-01T09:00:00+09:00")
    return value


_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _instant_in_range(value: datetime) -> datetime:
    """Instants far outside any contract's life (year 1, year 9999) are refused: converting them to
    UTC or JST, or adding the rules' days and months, would overflow ``datetime`` (a 500, and a
    sandbox clock set there could never be read again)."""
    try:
        in_range = _EARLIEST <= value.astimezone(UTC) < _LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError("must lie between 1970-01-01 and 9000-01-01")
    return value


MonthValue = Annotated[Month, BeforeValidator(_month), PlainSerializer(str, return_type=str),
                       WithJsonSchema({"type": "string", "pattern": MONTH_PATTERN, "examples": ["2026-05"]})]
IsoDate = Annotated[date, BeforeValidator(_date_text)]
Instant = Annotated[AwareDatetime, BeforeValidator(_instant_text), AfterValidator(_instant_in_range)]
Yen = Annotated[StrictInt, Field(ge=1, le=MAX_YEN, description="integer yen")]
NonNegativeYen = Annotated[StrictInt, Field(ge=0, le=MAX_YEN, description="integer yen")]
Users = Annotated[StrictInt, Field(ge=1, le=100_000)]
Code = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
ShortText = Annotated[StrictStr, Field(max_length=500)]

RejectionArticle = Literal[tuple(REJECTION_ARTICLES)]  # type: ignore[valid-type]
ForCauseArticle = Literal[tuple(FOR_CAUSE_ARTICLES)]  # type: ignore[valid-type]
Cycle = Literal["monthly", "annual"]
CauseName = Literal[tuple(c.value for c in OutageCause)]  # type: ignore[valid-type]
RemedyName = Literal[tuple(r.value for r in Remedy)]  # type: ignore[valid-type]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def body_examples(*values: dict[str, Any]) -> ConfigDict:
    """A request body's config with OpenAPI ``examples`` (the worked example of ``api.resources``)."""
    return ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": list(values)})


class Contractor(Body):
    """Contractor information (personal data, Art. 12): names, addresses, contacts."""

    name: ShortText | None = None
    address: ShortText | None = None
    contact_name: ShortText | None = None
    contact_email: ShortText | None = None
    contact_phone: ShortText | None = None
    store_administrator: ShortText | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ApplyIn(Body):
    """Paid application (Art. 2.2), or ``trial: true`` to start a free trial (Art. 5)."""

    customer_number: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    service: Code
    grade: Code
    users: Users
    contractor: Contractor
    trial: StrictBool = False
    billing_cycle: Cycle | None = Field(default=None, description="required unless trial is true")
    reference: Annotated[StrictStr, Field(max_length=64)] = ""

    model_config = body_examples(
        {"customer_number": "C-1001", "service": "kintone", "grade": "standard", "users": 10,
         "billing_cycle": "monthly", "contractor": {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
                                                    "contact_name": "Hanako Sample",
                                                    "contact_email": "hanako@example.invalid"}},
        {"customer_number": "C-1002", "service": "kintone", "grade": "standard", "users": 5, "trial": True,
         "contractor": {"name": "Sample Shoten", "contact_email": "info@example.invalid"}})


class ApplicationIn(Body):
    """Paid application of a contract in trial (Art. 2.2, 5)."""

    grade: Code
    users: Users
    billing_cycle: Cycle
    contractor: Contractor | None = Field(default=None, description="default: the trial's contractor information")


class RejectIn(Body):
    article: RejectionArticle  # type: ignore[valid-type]


class TerminateIn(Body):
    article: ForCauseArticle  # type: ignore[valid-type]


class ChangeIn(Body):
    grade: Code | None = None
    users: Users | None = None
    requested_month: MonthValue | None = Field(default=None, description="YYYY-MM; default: the earliest")


class TerminationNoticeIn(Body):
    requested_month: MonthValue | None = Field(default=None, description="YYYY-MM; default: the earliest")


class PaymentIn(Body):
    invoice_id: uuid.UUID
    amount: Yen
    paid_on: IsoDate
    reference: str | None = Field(default=None, min_length=1, max_length=128,
                                  description="payer's transaction id; the same reference is never recorded twice")

    model_config = body_examples({"invoice_id": "6fba9d0f-64eb-5e50-9c02-8893f86e115d", "amount": 24200,
                                  "paid_on": "2026-04-27", "reference": "20260427-0001"})


Reason = Annotated[StrictStr, Field(min_length=1, max_length=500, description="why (recorded with the event)")]
TaxRate = Literal["0.10", "0.08"]


class ReasonIn(Body):
    reason: Reason


class CorrectionLineIn(Body):
    """One line of a corrected invoice: quantity x unit price at a tax rate (rule book 6)."""

    kind: Literal["base_fee", "campaign_fee", "initial_fee", "upgrade_difference", "other"] = "other"
    description: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    unit_price: Annotated[StrictInt, Field(ge=0, le=MAX_YEN)]
    tax_rate: TaxRate = "0.10"


class CorrectionIn(Body):
    lines: Annotated[list[CorrectionLineIn], Field(min_length=1, max_length=50)]
    reason: Reason


class CreditNoteIn(Body):
    amount: Annotated[Yen, Field(description="tax-exclusive yen returned, at the invoice's rate "
                                                     "(or tax_rate)")]
    reason: Reason
    tax_rate: Annotated[TaxRate | None, Field(description="the rate of what is returned; required when the "
                                                          "invoice has items at both rates (Art. 57-4(3))")] = None


class ContractorIn(Body):
    contractor: Contractor


class PrivacyRequestIn(Body):
    """A request under the privacy policy (開示等の請求, section 7) to stop using (``stop_use``, 利用停止)
    or to erase (``erase``, 消去) the contractor's personal data. Disclosure is ``GET .../disclosure``."""

    request: Literal["erase", "stop_use"]


class AdvanceIn(Body):
    month: MonthValue | None = Field(default=None, description="YYYY-MM; default: the service clock's JST month")


class OutageIn(Body):
    service: Code
    started_at: Instant
    ended_at: Instant
    cause: CauseName  # type: ignore[valid-type]


class ClaimIn(Body):
    outage_id: uuid.UUID
    proof_of_payment: StrictBool
    proof_of_breach: StrictBool
    evidence: Annotated[StrictStr, Field(max_length=10_000)] = ""


class DecisionIn(Body):
    """The provider's decision (Art. 20.1). Omit both for the POLICY default (the minimum as a
    fee reduction; an ineligible claim is rejected with its reason)."""

    remedy: RemedyName | None = None  # type: ignore[valid-type]
    amount: NonNegativeYen | None = None


class ClockIn(Body):
    now: Instant


# --------------------------------------------------------------------------- documented responses


class CommandOut(BaseModel):
    """What a command answers (operations add their own fields, e.g. ``effective_month``);
    headers: ``ETag`` (the new version), ``X-Position``."""

    contract_id: uuid.UUID
    version: int
    position: int | None
    events: int = Field(description="events stored by this command")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in (
        (401, "no or unknown API key"),
        (403, "the key's role may not call this operation"),
        (404, "no such resource"),
        (409, "refused by a business rule (names the article), or a concurrent duplicate"),
        (412, "If-Match names a stale version"),
        (422, "malformed input, or the same Idempotency-Key with another body"),
    )
}


# --------------------------------------------------------------------------- settlement (rule book 7)


class TransferIn(Body):
    """A bank transfer received (振込入金). Without ``customer_number`` (payer unknown) it is kept as
    unapplied for an operator; with it, it is allocated at once to the customer's open invoices,
    oldest first, or to ``invoice_ids`` when the payer named them."""

    customer_number: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    payer_name: StrictStr = Field(min_length=1, max_length=140, description="as on the bank statement (often "
                                  "half-width kana); personal data: never shown to auditors")
    bank_reference: StrictStr = Field(min_length=1, max_length=64, description="the bank's reference; a transfer "
                                      "is recorded once per customer and reference (409 when repeated)")
    amount: Yen
    value_date: IsoDate
    invoice_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    contract_id: uuid.UUID | None = Field(default=None, description="register this contract with the customer "
                                          "first (contracts opened before customer accounts existed)")

    model_config = body_examples({"customer_number": "C-1001", "payer_name": "ｶ)ｻﾝﾌﾟﾙﾄﾚｰﾃﾞｨﾝｸﾞ",
                                  "bank_reference": "20260427-0001", "amount": 24200, "value_date": "2026-04-27"})


class ApplyTransferIn(Body):
    customer_number: StrictStr = Field(min_length=1, max_length=64)
    invoice_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)


class ReverseTransferIn(Body):
    reason: Reason
    reversed_on: IsoDate


class CreditRefundIn(Body):
    amount: Yen
    reason: Reason


class WriteOffIn(Body):
    invoice_id: uuid.UUID
    amount: Yen
    reason: Reason


class StopDateIn(Body):
    stop_on: IsoDate
    reason: Reason


class LiftIn(Body):
    reason: Reason
