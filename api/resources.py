"""The documented response shapes: one pydantic model per resource and per command answer.

They describe what the routes answer (the routes build their JSON from the views and return it
as a ``JSONResponse``; these models are the OpenAPI contract a client is generated from, checked
by ``tests/api/test_api_generated_client.py``). Every model allows additional properties, so a
field added later never breaks a generated client. Dates are ``YYYY-MM-DD``, months ``YYYY-MM``,
instants ISO 8601 (UTC ``Z`` where this service writes them), ids dashed UUIDs, money integer yen.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MonthText = str  # YYYY-MM (documented through the field descriptions and examples)
CID = "fe470a1f-5e9c-56c3-bba4-5ea8528b5d24"
INVOICE_ID = "6fba9d0f-64eb-5e50-9c02-8893f86e115d"
CLAIM_ID = "ad4a6902-ddba-5edf-9dc7-b38ef02019e1"
OUTAGE_ID = "c697e781-958d-5525-9f54-7f6be972037e"


class Resource(BaseModel):
    model_config = ConfigDict(extra="allow")


def examples(*values: dict[str, Any]) -> ConfigDict:
    """A response model's config with OpenAPI ``examples`` (values as the rule book computes them:
    integer yen, UTC ``Z`` instants, dashed ids; checked by ``tests/api/test_api_examples.py``)."""
    return ConfigDict(extra="allow", json_schema_extra={"examples": list(values)})


# Worked example (rule book 3-6, the sample catalog): kintone standard x 10 users, monthly, applied
# and approved 2026-03-02 (first month April). April invoice INV-2026-000001 issued 2026-04-01: campaign
# 1,200 x 10 = 12,000 + initial fee 10,000 = 22,000; tax 10 % = 2,200 (rounded down once); total
# 24,200, due 2026-05-31 (the last day of the next month). Issuer: the sandbox's sample (T7123456789012:
# check digit 7 of 123456789012). Termination notice for May: ended 2026-05-31, recorded at the June
# month start (2026-06-01 00:00 JST = 2026-05-31T15:00:00Z), stored data kept to 2026-07-30 (+60 days).
CONTRACTOR_EXAMPLE = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
                      "contact_name": "Hanako Sample", "contact_email": "hanako@example.invalid"}
LINES_EXAMPLE = [
    {"kind": "campaign_fee", "rule": "Art. 9.2 campaign price", "description": "kintone standard 2026-04 x 10 users",
     "quantity": 10, "unit_price": 1200, "amount": 12000, "tax_rate": "0.10", "reduced_rate": False, "ref": None},
    {"kind": "initial_fee", "rule": "Art. 9.1 initial fee", "description": "one-time initial fee", "quantity": 1,
     "unit_price": 10000, "amount": 10000, "tax_rate": "0.10", "reduced_rate": False, "ref": None},
    {"kind": "tax", "rule": "Consumption Tax Act Art. 57-4(1) item 5: consumption tax per rate",
     "description": "consumption tax 10% on 22000", "quantity": None, "unit_price": None, "amount": 2200,
     "tax_rate": None, "reduced_rate": False, "ref": None}]
INVOICE_EXAMPLE: dict[str, Any] = {
    "id": INVOICE_ID, "object": "invoice", "invoice_id": INVOICE_ID, "contract_id": CID, "kind": "monthly",
    "period": "2026-04", "month": "2026-04", "issued_on": "2026-04-01", "due_on": "2026-05-31",
    "lines": LINES_EXAMPLE, "total": 24200, "paid": 24200, "outstanding": 0, "refunded": 0,
    "payments": [{"paid_on": "2026-04-27", "amount": 24200}], "late_interest": 0, "interest_as_of": "2026-05-01"}
ISSUED_INVOICE_EXAMPLE: dict[str, Any] = {
    **INVOICE_EXAMPLE, "number": "INV-2026-000001", "document_type": "invoice", "status": "issued",
    "issuer": {"name": "見本クラウド株式会社 (sample issuer, sandbox only)", "registration_number": "T7123456789012",
               "address": "東京都千代田区見本町1-1 (fictional)", "contact": "billing@example.invalid"},
    "rate_totals": [{"rate": "0.10", "rate_kind": "standard", "taxable": 22000, "tax": 2200}], "tax": 2200,
    "recipient": "Example Trading K.K.",
    "document_hash": "2502247ddcd11ab4d9640789e8fae386bd363cdbbe3a009508bce0f3a5421e16"}
EVENT_EXAMPLE: dict[str, Any] = {
    "object": "event", "aggregate_type": "Contract", "aggregate_id": CID, "version": 8, "type": "Terminated",
    "recorded_at": "2026-05-31T15:00:02.118204Z",
    "actor": {"kind": "scheduler", "name": "scheduler", "deadline": "month_start 2026-06-01"},
    "data": {"reason": "notice", "article": "Art. 10.1", "ended_on": "2026-05-31", "retention_until": "2026-07-30",
             "at": "2026-05-31T15:00:00Z"}}
APPLIED_EXAMPLE: dict[str, Any] = {
    "object": "event", "aggregate_type": "Contract", "aggregate_id": CID, "version": 2, "type": "Applied",
    "recorded_at": "2026-03-02T01:00:00.402311Z", "actor": {"kind": "api_key", "name": "erp", "role": "billing"},
    "data": {"cycle": "monthly", "users": 10, "at": "2026-03-02T01:00:00Z",
             "contractor": {"object": "redacted", "redacted": True, "reason": "role"}}}


class ListPage(Resource):
    """The list envelope: ``data`` holds one page; pass ``next_cursor`` as ``starting_after``."""

    object: Literal["list"] = "list"
    url: str
    has_more: bool
    next_cursor: str | None = Field(default=None, description="null on the last page")


# --------------------------------------------------------------------------- personal data withheld


class Redacted(Resource):
    """A personal-data field withheld (rule book 10, Art. 13): the one representation wherever a
    personal field may be withheld (a contract's ``contractor`` and its ``contacts``, an invoice's
    ``recipient``, a transfer's ``payer_name`` and ``bank_reference``, the personal fields of an
    event's ``data``). ``reason``: ``role`` (the reader may not see personal data: auditors) or
    ``erased`` (its keys were destroyed; wins over ``role``). Replaces the strings ``"[redacted]"``
    and ``"[erased]"`` and the object ``{"erased": "true"}`` (see docs/api.md, changelog)."""

    object: Literal["redacted"]
    redacted: Literal[True]
    reason: Literal["role", "erased"]

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"object": "redacted", "redacted": True, "reason": "role"},
        {"object": "redacted", "redacted": True, "reason": "erased"}]})


# --------------------------------------------------------------------------- errors


class FieldError(Resource):
    field: str
    message: str


class Problem(Resource):
    """RFC 9457 problem details (``application/problem+json``). ``article`` names the article of
    the terms (or the law) a refused command breaks; ``field`` the offending input."""

    type: str = Field(description="urn:contracts:problem:<kind>")
    title: str
    status: int
    detail: str
    article: str | None = None
    field: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="malformed input: every field at fault")
    incident: str | None = Field(default=None, description="500 only: the id in the service log")

    model_config = examples(
        {"type": "urn:contracts:problem:rule-violation", "title": "Refused by a business rule", "status": 409,
         "detail": "not allowed in state active (allowed: applied)", "article": "Art. 2.4", "field": None,
         "instance": f"/v1/contracts/{CID}/reject"},
        {"type": "urn:contracts:problem:invalid-input", "title": "A value the rules refuse", "status": 422,
         "detail": "grade standard needs at least 5 users", "article": "Art. 10.1", "field": "users",
         "instance": f"/v1/contracts/{CID}/changes"})


# --------------------------------------------------------------------------- commands


class CommandResult(Resource):
    """What every contract command answers; headers ``ETag`` (the new version) and ``X-Position``."""

    contract_id: str
    version: int
    position: int | None
    events: int = Field(description="events stored by this command")


class ApplyResult(CommandResult):
    state: str = Field(description="trial or applied")

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"contract_id": CID, "version": 2, "position": 2, "events": 2, "state": "applied"}]})


class ApproveResult(CommandResult):
    concluded_on: date
    first_month: MonthText

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"contract_id": CID, "version": 3, "position": 3, "events": 1, "concluded_on": "2026-03-02",
         "first_month": "2026-04"}]})


class ChangeResult(CommandResult):
    change_id: str
    requested_month: MonthText | None
    effective_month: MonthText
    received_on: date
    grade: str
    users: int
    upgrade_charge: int
    remaining_months: int


class TerminationNoticeResult(CommandResult):
    requested_month: MonthText | None
    effective_month: MonthText = Field(description="the last month of service")
    received_on: date
    last_month_of_service: MonthText = Field(deprecated=True, description="deprecated: same as effective_month")


class PaymentResult(CommandResult):
    invoice_id: str
    outstanding: int


class AdvanceResult(CommandResult):
    month: MonthText
    state: str


class Assessment(Resource):
    eligible: bool
    reason: str | None = None
    breach_date: date | None = None
    breach_month: MonthText | None = None
    credit_days: int
    minimum: int
    maximum: int
    liability_cap: int


class ClaimResult(CommandResult):
    claim_id: str
    assessment: Assessment


class DecisionResult(CommandResult):
    claim_id: str
    status: Literal["granted", "rejected"] = Field(description="as the claim's status says it")
    decision: Literal["granted", "rejected"] = Field(deprecated=True, description="deprecated: same as status")
    remedy: str | None
    amount: int | None
    reason: str | None


class Outage(Resource):
    id: str
    object: Literal["outage"] = "outage"
    outage_id: str
    service: str
    started_at: str
    ended_at: str
    cause: str
    breaches: bool
    breach_date: date | None
    credit_days: int


class GradeOffer(Resource):
    grade: str
    monthly_price: int
    annual_price: int | None
    initial_fee: int
    min_users: int
    trial_days: int
    beta: bool
    sla_eligible: bool
    campaign: dict[str, Any] | None = None


class CatalogService(Resource):
    object: Literal["service"] = "service"
    id: str
    grades: list[GradeOffer]


class CatalogResource(Resource):
    object: Literal["catalog"] = "catalog"
    tax_rate: str = Field(description="consumption tax rate, a decimal string such as 0.10")
    data: list[CatalogService]


class OutageResult(Resource):
    """Headers ``ETag``, ``X-Position``, ``Location``."""

    outage_id: str
    version: int
    position: int | None
    events: int
    service: str
    breaches: bool
    breach_date: date | None
    credit_days: int


# --------------------------------------------------------------------------- contracts


class Prices(Resource):
    monthly_price: int
    annual_price: int | None = None
    initial_fee: int
    min_users: int
    campaign: dict[str, Any] | None = None


class Trial(Resource):
    started_on: date
    ends_on: date


class Period(Resource):
    start: MonthText
    end: MonthText


class PendingChange(Resource):
    change_id: str
    effective_month: MonthText
    grade: str
    users: int
    upgrade_charge: int
    remaining_months: int


class ContractorInfo(Resource):
    """Contractor information (personal data, Art. 12) as the billing and operator roles read it.
    Once the contacts were erased on request (privacy policy 7) only ``name`` and ``address`` (the
    invoice recipient, kept for the records period) remain, with ``contacts`` a ``Redacted``
    object (reason ``erased``)."""

    name: str | None = None
    address: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    store_administrator: str | None = None
    contacts: Redacted | None = Field(default=None, description="present once the contacts were erased")


class ContractResource(Resource):
    """A contract's state (header ``ETag`` = version). ``contractor``: personal data, a
    ``ContractorInfo`` for the billing and operator roles, a ``Redacted`` object for auditors
    (reason ``role``) and for everyone once erased (reason ``erased``); null before any."""

    id: str
    object: Literal["contract"] = "contract"
    contract_id: str
    version: int
    customer_number: str
    service: str
    reference: str
    state: str
    grade: str | None
    users: int | None
    billing_cycle: str | None
    prices: Prices | None
    trial: Trial | None
    concluded_on: date | None
    first_month: MonthText | None
    period: Period | None
    next_month_start: MonthText | None
    pending_changes: list[PendingChange]
    termination_month: MonthText | None
    overdue_invoices: list[str]
    outstanding: int
    suspension_stop_on: date | None
    ended_on: date | None
    termination_reason: str | None
    termination_article: str | None
    retention_until: date | None
    extension_days: int
    data_deleted: bool
    contractor: Redacted | ContractorInfo | None
    as_of: str | None = Field(default=None, description="the as_of instant asked for (recorded time)")
    on: date | None = Field(default=None, description="the business date asked for (on)")

    model_config = examples({
        "id": CID, "object": "contract", "contract_id": CID, "version": 5, "customer_number": "C-1001",
        "service": "kintone", "reference": "", "state": "active", "grade": "standard", "users": 10,
        "billing_cycle": "monthly",
        "prices": {"monthly_price": 1500, "annual_price": 18000, "initial_fee": 10000, "min_users": 5,
                   "campaign": {"monthly_price": 1200, "months": 3, "annual_price": 16000}},
        "trial": None, "concluded_on": "2026-03-02", "first_month": "2026-04",
        "period": {"start": "2026-04", "end": "2026-04"}, "next_month_start": "2026-05", "pending_changes": [],
        "termination_month": None, "overdue_invoices": [], "outstanding": 24200, "suspension_stop_on": None,
        "ended_on": None, "termination_reason": None, "termination_article": None, "retention_until": None,
        "extension_days": 0, "data_deleted": False, "contractor": CONTRACTOR_EXAMPLE, "as_of": None, "on": None})


class ContractSummary(Resource):
    """A contract as contract search finds it; ``url`` reads the whole contract."""

    id: str
    object: Literal["contract_summary"] = "contract_summary"
    contract_id: str
    url: str
    customer_number: str
    service: str
    state: str
    version: int


class ContractList(ListPage):
    data: list[ContractSummary]

    model_config = examples({
        "object": "list", "url": "/v1/contracts", "has_more": False, "next_cursor": None,
        "data": [{"id": CID, "object": "contract_summary", "contract_id": CID, "url": f"/v1/contracts/{CID}",
                  "customer_number": "C-1001", "service": "kintone", "state": "active", "version": 5}]})


# --------------------------------------------------------------------------- events


class Actor(Resource):
    kind: str = Field(description="api_key, scheduler, operator or system")
    name: str
    role: str | None = None
    deadline: str | None = None


class Event(Resource):
    """One stored event. A personal field of ``data`` (``contractor``, ``evidence``, a payment's
    ``reference``, ``payer_name``, ``bank_reference``, ``recipient``) reads its value or a ``Redacted``
    object. In the global feed a stored event that does not decode (damaged in
    storage) is listed with ``undecodable: true``, a ``reason``, and ``recorded_at``, ``actor`` and
    ``data`` null."""

    object: Literal["event"] = "event"
    position: int | None = Field(default=None, description="notification position (global feed only)")
    aggregate_type: str
    aggregate_id: str
    version: int
    type: str
    recorded_at: str | None = Field(description="instant the event was recorded (UTC, Z); null if undecodable")
    actor: Actor | None = None
    data: dict[str, Any] | None
    undecodable: bool = Field(default=False, description="true: stored but damaged, cannot be read")
    reason: str | None = Field(default=None, description="why it does not decode (undecodable only)")

    model_config = examples(EVENT_EXAMPLE, APPLIED_EXAMPLE)


class ContractEvents(ListPage):
    contract_id: str
    data: list[Event]
    events: list[Event] = Field(deprecated=True, description="deprecated: the same page as data")

    model_config = examples({"object": "list", "url": f"/v1/contracts/{CID}/events", "contract_id": CID,
                             "data": [APPLIED_EXAMPLE], "events": [APPLIED_EXAMPLE], "has_more": True,
                             "next_cursor": "2"})


class EventFeed(ListPage):
    data: list[Event]
    events: list[Event] = Field(deprecated=True, description="deprecated: the same page as data")
    next_after: int = Field(description="pass as after to read on")
    has_more: bool


# --------------------------------------------------------------------------- billing


class InvoiceLine(Resource):
    """``quantity x unit_price == amount``, or no unit price at all (tax, credits, late interest: rule book 6)."""

    kind: str
    rule: str = Field(description="the article the line applies")
    description: str
    quantity: int | None
    unit_price: int | None
    amount: int
    tax_rate: str | None = Field(default=None, description="\"0.10\" or \"0.08\"; null outside consumption tax")
    reduced_rate: bool = False
    ref: str | None = Field(default=None, description="what the line settles: an SLA claim, an original invoice")


class InvoicePayment(Resource):
    paid_on: date
    amount: int


class Invoice(Resource):
    id: str
    object: Literal["invoice"] = "invoice"
    invoice_id: str
    contract_id: str
    kind: str
    period: str
    month: MonthText
    issued_on: date
    due_on: date
    lines: list[InvoiceLine]
    total: int
    paid: int
    outstanding: int
    refunded: int
    payments: list[InvoicePayment]
    late_interest: int
    interest_as_of: date

    model_config = examples(INVOICE_EXAMPLE)


class ContractInvoices(ListPage):
    contract_id: str
    as_of: str | None
    on: date | None = None
    data: list[Invoice]
    invoices: list[Invoice] = Field(deprecated=True, description="deprecated: the same page as data")

    model_config = examples({"object": "list", "url": f"/v1/contracts/{CID}/invoices", "contract_id": CID,
                             "as_of": None, "on": None, "data": [INVOICE_EXAMPLE], "invoices": [INVOICE_EXAMPLE],
                             "has_more": False, "next_cursor": None})


class IssuedInvoice(Invoice):
    """One issued document as issued (rule book 6.1, Art. 57-4): an invoice or a credit note, with its
    number, issuer, per-rate totals, document hash and recipient (redacted for auditors)."""

    number: str
    document_type: Literal["invoice", "credit_note"]
    status: str = Field(description="issued | void | corrected")
    recipient: Redacted | str = Field(description="the recipient's name (Art. 57-4(1) item 6); Redacted for "
                                                  "auditors and once erased")
    document_hash: str

    model_config = examples(ISSUED_INVOICE_EXAMPLE)


class InvoicePage(ListPage):
    """A month's invoices (``month`` set), or a page of the auditors' search (rule book 13)."""

    month: MonthText | None = None
    data: list[Invoice]
    invoices: list[Invoice] = Field(deprecated=True, description="deprecated: the same page as data")

    model_config = examples({"object": "list", "url": "/v1/invoices", "month": "2026-04", "data": [INVOICE_EXAMPLE],
                             "invoices": [INVOICE_EXAMPLE], "has_more": True, "next_cursor": INVOICE_ID})


# --------------------------------------------------------------------------- SLA claims


class Claim(Resource):
    id: str
    object: Literal["sla_claim"] = "sla_claim"
    claim_id: str
    contract_id: str
    outage_id: str
    service: str
    status: str = Field(description="pending, granted or rejected")
    eligible: bool
    reason: str | None = None
    received_on: date
    credit_days: int
    minimum: int
    maximum: int
    liability_cap: int
    remedy: str | None = None
    amount: int | None = None
    decided_at: str | None = None


class ContractClaims(ListPage):
    contract_id: str
    as_of: str | None = None
    on: date | None = None
    data: list[Claim]
    claims: list[Claim] = Field(deprecated=True, description="deprecated: the same page as data")


# --------------------------------------------------------------------------- settlement (rule book 7)

TRANSFER_ID = "3b0e7d6c-1f0a-4c55-9d7e-2f6a1c9b8e40"


class AllocationOut(Resource):
    contract_id: str
    invoice_id: str
    amount: int
    rule: str = Field(description="the rule that placed the money (oldest first, named invoice, tolerance)")


class Transfer(Resource):
    """A bank transfer received and where its money went (header ``ETag`` = its version).
    ``payer_name`` and ``bank_reference`` are personal data: a ``Redacted`` object for auditors
    (reason ``role``) and once the customer's contractor data is erased (reason ``erased``)."""

    object: Literal["transfer"] = "transfer"
    id: str
    status: Literal["unapplied", "applied", "reversed"]
    customer_number: str | None
    payer_name: Redacted | str
    bank_reference: Redacted | str
    amount: int
    value_date: date
    received_at: str = Field(description="instant recorded (UTC, Z)")
    named_invoices: list[str]
    allocations: list[AllocationOut]
    written_off: list[AllocationOut]
    credit: int = Field(description="the excess kept as the customer's credit balance")
    reversed_on: date | None
    reversal_reason: str | None
    version: int

    model_config = examples({
        "object": "transfer", "id": TRANSFER_ID, "status": "applied", "customer_number": "C-1001",
        "payer_name": "ｶ)ｻﾝﾌﾟﾙﾄﾚｰﾃﾞｨﾝｸﾞ", "bank_reference": "20260427-0001", "amount": 24200,
        "value_date": "2026-04-27", "received_at": "2026-04-27T01:00:00Z", "named_invoices": [],
        "allocations": [{"contract_id": CID, "invoice_id": INVOICE_ID, "amount": 24200,
                         "rule": "rule book 7: oldest open invoice first, principal before interest"}],
        "written_off": [], "credit": 0, "reversed_on": None, "reversal_reason": None, "version": 1})


class TransferList(Resource):
    object: Literal["list"] = "list"
    data: list[Transfer]
    has_more: bool


class OpenInvoiceOut(Resource):
    invoice_id: str
    contract_id: str
    due_on: date
    outstanding: int


class CustomerAccountResource(Resource):
    object: Literal["customer_account"] = "customer_account"
    customer_number: str
    contracts: list[str]
    credit_balance: int
    refunded: int
    open_invoices: list[OpenInvoiceOut]
    outstanding: int
    version: int


class SettlementResult(CommandResult):
    """A write-off, a moved suspension stop date or a lifted suspension: the contract after it."""

    state: str
    suspension_stop_on: date | None
    outstanding: int


# --------------------------------------------------------------------------- other reads


class Deadline(Resource):
    object: Literal["deadline"] = "deadline"
    due_on: date
    kind: str
    aggregate_id: str
    ref: str


class Deadlines(ListPage):
    until: date
    data: list[Deadline]
    deadlines: list[Deadline] = Field(deprecated=True, description="deprecated: the same page as data")


class ChainBreak(Resource):
    aggregate_id: str
    version: int
    reason: str


class VerifyReport(Resource):
    contract_id: str
    ok: bool
    checked: int
    aggregates: int
    first_broken: ChainBreak | None
    broken: list[ChainBreak]
    head: str


class Disclosure(Resource):
    document: str
    customer_number: str
    generated_at: str
    erased: bool
    contracts: list[dict[str, Any]]


class ClockResource(Resource):
    now: str = Field(description="the service clock (UTC, Z)")
    today: date = Field(description="its JST date")
    mode: str
    settable: bool


class Status(Resource):
    status: str


# --------------------------------------------------------------------------- announcements, webhooks


class DiscontinuationResult(Resource):
    discontinuation_id: str
    service: str
    discontinue_on: date
    announced_on: date
    version: int
    position: int | None


class TermsChangeResult(Resource):
    terms_change_id: str
    version: str
    effective_on: date
    announced_on: date
    position: int | None


class WebhookEndpoint(Resource):
    """A webhook endpoint (never its secret, except once in the answer that creates or rolls it)."""

    endpoint_id: str
    url: str
    event_types: list[str]
    status: str
    description: str | None = None
    personal_data: bool | None = None
    disabled_reason: str | None = None
    failing_since: str | None = Field(default=None, description="UTC, Z")
    previous_secret_expires_at: str | None = Field(default=None, description="UTC, Z")
    created_at: str | None = Field(default=None, description="UTC, Z")
    updated_at: str | None = Field(default=None, description="UTC, Z")
    created_position: int | None = None
    secret: str | None = Field(default=None, description="shown once: on registration and on roll-secret")


class WebhookEndpoints(Resource):
    endpoints: list[WebhookEndpoint]


class EndpointLogEntry(Resource):
    at: str = Field(description="UTC, Z")
    actor: str
    action: str
    detail: str | None = None


class WebhookEndpointDetail(WebhookEndpoint):
    log: list[EndpointLogEntry] = Field(description="every change of the endpoint, oldest first")


class WebhookType(Resource):
    type: str
    version: int
    article: str | None
    personal_fields: list[str]
    description: str


class WebhookTypes(Resource):
    types: list[WebhookType]


class DeliveryAttempt(Resource):
    attempt: int
    at: str | None = Field(description="UTC, Z")
    status_code: int | None
    latency_ms: int | None
    error: str | None


class Delivery(Resource):
    notification_id: str
    endpoint_id: str
    type: str
    version: int
    position: int
    aggregate_id: str
    contract_id: str | None
    occurred_at: str | None = Field(description="UTC, Z")
    status: str = Field(description="pending, delivered, failed or cancelled")
    attempts: int
    next_attempt_at: str | None
    delivered_at: str | None
    last_status_code: int | None
    last_error: str | None
    history: list[DeliveryAttempt] | None = Field(default=None, description="one delivery read by id only")


class Deliveries(Resource):
    endpoint_id: str
    deliveries: list[Delivery]
    next_after: int = Field(description="pass as after to read on")
    has_more: bool
    statuses: list[str]


class RedeliverResult(Resource):
    endpoint_id: str
    queued: int
