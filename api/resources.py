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

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "urn:contracts:problem:rule-violation", "title": "Refused by a business rule", "status": 409,
        "detail": "not allowed in state active (allowed: applied)", "article": "Art. 2.4", "field": None,
        "instance": f"/v1/contracts/{CID}/reject"}]})


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


class ContractEvents(ListPage):
    contract_id: str
    data: list[Event]
    events: list[Event] = Field(deprecated=True, description="deprecated: the same page as data")


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


class ContractInvoices(ListPage):
    contract_id: str
    as_of: str | None
    on: date | None = None
    data: list[Invoice]
    invoices: list[Invoice] = Field(deprecated=True, description="deprecated: the same page as data")


class IssuedInvoice(Invoice):
    """One issued document as issued (rule book 6.1, Art. 57-4): an invoice or a credit note, with its
    number, issuer, per-rate totals, document hash and recipient (redacted for auditors)."""

    number: str
    document_type: Literal["invoice", "credit_note"]
    status: str = Field(description="issued | void | corrected")
    recipient: Redacted | str = Field(description="the recipient's name (Art. 57-4(1) item 6); Redacted for "
                                                  "auditors and once erased")
    document_hash: str


class InvoicePage(ListPage):
    """A month's invoices (``month`` set), or a page of the auditors' search (rule book 13)."""

    month: MonthText | None = None
    data: list[Invoice]
    invoices: list[Invoice] = Field(deprecated=True, description="deprecated: the same page as data")


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

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "object": "transfer", "id": TRANSFER_ID, "status": "applied", "customer_number": "C-1001",
        "payer_name": "カ）サンプル", "bank_reference": "20260427-0001", "amount": 33000,
        "value_date": "2026-04-27", "received_at": "2026-04-27T01:00:00Z", "named_invoices": [],
        "allocations": [{"contract_id": CID, "invoice_id": INVOICE_ID, "amount": 33000, "rule": "rule book 7"}],
        "written_off": [], "credit": 0, "reversed_on": None, "reversal_reason": None, "version": 2}]})


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
