"""The one table from domain events to notification types (spec 12).

``NOTIFICATION_TYPES`` maps an event class to its notification type: the stable name receivers
subscribe to, the payload version, the payload builder, the payload keys that hold personal
data and, for the notices the terms require, the article. Adding a notification is adding one
row here (and a line in ``docs/webhooks.md``); nothing else dispatches on event types.

A payload builder returns JSON values only (strings, integers, booleans, lists, dicts): money as
integer yen, dates ``YYYY-MM-DD``, months ``YYYY-MM``, ids as strings. A payload version changes
only when a field is removed or changes meaning; added fields keep the version.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.calendar import jst_date
from domain.contract import Contract, ContractEvents
from domain.personal_data import REDACTED_VALUE
from domain.service_events import ServiceEvents

NOTIFICATION_NAMESPACE = uuid.UUID("5d0f3c8e-61a2-4b7e-9f14-2c8e7a9b3d60")
REDACTED = REDACTED_VALUE  # what a personal field reads as for an endpoint not allowed to receive it (the API's)
Payload = dict[str, Any]


@dataclass(frozen=True)
class NotificationType:
    name: str  # stable, documented: receivers subscribe to it and switch on it
    version: int  # payload version
    build: Callable[[Any], Payload]  # event -> the payload's ``data``
    personal: tuple[str, ...] = ()  # keys of ``data`` holding personal data (spec 10)
    article: str | None = None  # the notice the terms require (domain.notifications.NOTICE_ARTICLES)
    description: str = ""


def _day(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


# --------------------------------------------------------------------------- payload builders (version 1)


def _invoice_overdue(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "invoice_id": _id(e.invoice_id), "due_on": _day(e.due_on),
            "unpaid": int(e.unpaid), "overdue_on": _day(e.overdue_on)}


def _payment_reminder(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "invoice_id": _id(e.invoice_id), "stage": e.stage,
            "due_on": _day(e.due_on), "unpaid": int(e.unpaid), "reminded_on": _day(e.reminded_on)}


def _payment_received(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "invoice_id": _id(e.invoice_id), "amount": int(e.amount),
            "paid_on": _day(e.paid_on), "reference": getattr(e, "reference", None),
            "transfer_id": _id(getattr(e, "transfer_id", None)), "source": getattr(e, "source", "transfer")}


def _payment_reversed(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "invoice_id": _id(e.invoice_id), "transfer_id": _id(e.transfer_id),
            "amount": int(e.amount), "paid_on": _day(e.paid_on), "reversed_on": _day(e.reversed_on),
            "overdue_again": bool(e.overdue_again), "suspension_stop_on": _day(e.suspension_stop_on)}


def _debt_written_off(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "invoice_id": _id(e.invoice_id), "amount": int(e.amount),
            "written_off_on": _day(e.written_off_on), "rule": e.rule}


def _stop_moved(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "previous_stop_on": _day(e.previous_stop_on),
            "stop_on": _day(e.stop_on)}


def _suspension_noticed(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "reason": e.reason, "stop_on": _day(e.stop_on),
            "noticed_on": _day(e.noticed_on), "invoice_ids": [str(i) for i in e.invoice_ids]}


def _suspension_lifted(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "lifted_on": _day(e.lifted_on),
            "reason": getattr(e, "reason", None)}  # set when an operator lifted it (Art. 9.5 proviso)


def _terminated(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "reason": _enum(e.reason), "article": e.article,
            "ended_on": _day(e.ended_on), "retention_until": _day(e.retention_until)}


def _claim_granted(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "claim_id": _id(e.claim_id), "decision": "granted",
            "remedy": e.remedy, "amount": int(e.amount), "credit_days": int(e.credit_days),
            "breach_month": str(e.breach_month), "reason": None}


def _claim_rejected(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "claim_id": _id(e.claim_id), "decision": "rejected",
            "remedy": None, "amount": 0, "credit_days": 0, "breach_month": None, "reason": e.reason}


def _document_issued(e: Any) -> Payload:
    """An issued invoice or credit note (rule book 6.1) as issued; the recipient's name is left out
    (personal data; the receiver knows its customer by ``contract_id``), fetch the whole document
    from ``GET /v1/invoices/{invoice_id}``."""
    d = e.document
    original = d.get("original")
    return {"contract_id": _id(e.originator_id), "invoice_id": _id(e.invoice_id), "number": d["number"],
            "document_type": d["document_type"], "kind": d["kind"], "period": d["period"],
            "issued_on": d["issued_on"], "due_on": d["due_on"], "total": int(d["total"]),
            "rate_totals": [dict(r) for r in d["rate_totals"]], "document_hash": e.document_hash,
            "original_invoice_id": original["invoice_id"] if original else None,
            "original_number": original["number"] if original else None}


def _invoice_voided(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "invoice_id": _id(e.invoice_id), "reason": e.reason,
            "voided_on": _day(jst_date(e.at))}


def _interest_waived(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "invoice_id": _id(e.invoice_id), "amount": int(e.amount),
            "reason": e.reason, "waived_on": _day(jst_date(e.at))}


def _stored_data_deleted(e: Any) -> Payload:
    return {"contract_id": _id(e.originator_id), "service": e.service, "deleted_on": _day(e.deleted_on)}


def _data_deleted(e: Any) -> Payload:
    """The event of stores written before issue 15 (it carried no service)."""
    return {"contract_id": _id(e.originator_id), "service": None, "deleted_on": _day(e.deleted_on)}


def _discontinuation_announced(e: Any) -> Payload:
    return {"service": e.service, "discontinue_on": _day(e.discontinue_on), "announced_on": _day(e.announced_on)}


def _discontinuation_completed(e: Any) -> Payload:
    return {"discontinuation_id": _id(e.originator_id), "completed_on": _day(e.completed_on)}


def _terms_announced(e: Any) -> Payload:
    return {"terms_version": e.terms_version, "effective_on": _day(e.effective_on), "summary": e.summary,
            "announced_on": _day(e.announced_on)}


def _terms_took_effect(e: Any) -> Payload:
    return {"terms_change_id": _id(e.originator_id), "effective_on": _day(e.on)}


# --------------------------------------------------------------------------- the table

INVOICE_ISSUED = NotificationType(
    "invoice.issued", 1, _document_issued,
    description="a qualified invoice (適格請求書) was issued: number, period, per-rate totals and tax, due date")
CREDIT_NOTE_ISSUED = NotificationType(
    "credit_note.issued", 1, _document_issued,
    description="a credit note (返還インボイス) was issued against an invoice: refund, discount, SLA refund")

NOTIFICATION_TYPES: Mapping[type, NotificationType] = {
    ContractEvents.InvoiceIssued: INVOICE_ISSUED,  # a credit note: CREDIT_NOTE_ISSUED (``VARIANTS``)
    ContractEvents.InvoiceVoided: NotificationType(
        "invoice.voided", 1, _invoice_voided,
        description="an invoice issued in error was voided before any payment (rule book 6.1): nothing is owed on it"),
    ContractEvents.LateInterestWaived: NotificationType(
        "invoice.interest_waived", 1, _interest_waived,
        description="an operator waived the late interest of an invoice, with the reason (Art. 9.4): it is no "
                    "longer owed and no invoice will bill it"),
    ContractEvents.PaymentOverdue: NotificationType(
        "invoice.overdue", 1, _invoice_overdue, description="an invoice is unpaid the day after its due date"),
    ContractEvents.PaymentReminded: NotificationType(
        "reminder.payment_due", 1, _payment_reminder,
        description="an invoice is still unpaid: a reminder before (stage before_due) or after (after_due) its due "
                    "date (rule book 7, POLICY payment_reminder_days_before / _after)"),
    ContractEvents.PaymentReceived: NotificationType(
        "payment.received", 1, _payment_received, personal=("reference",),
        description="a payment of one invoice was recorded"),
    ContractEvents.PaymentReversed: NotificationType(
        "payment.reversed", 1, _payment_reversed,
        description="a payment was reversed (a bounced or mistaken transfer, rule book 7): the invoice is unpaid "
                    "again from the payment's day"),
    ContractEvents.DebtWrittenOff: NotificationType(
        "invoice.written_off", 1, _debt_written_off,
        description="an amount of an invoice is no longer claimed (transfer fee shortfall or uncollectible)"),
    ContractEvents.SuspensionStopMoved: NotificationType(
        "contract.suspension_stop_moved", 1, _stop_moved, article="Art. 9.5",
        description="the provider allowed a later payment: the service stops on the new stop_on"),
    ContractEvents.SuspensionNoticed: NotificationType(
        "contract.suspension_noticed", 1, _suspension_noticed, article="Art. 9.5",
        description="service will stop on stop_on for the reason given unless paid before"),
    ContractEvents.SuspensionLifted: NotificationType(
        "contract.suspension_lifted", 1, _suspension_lifted,
        description="paid in time, or lifted by the provider (Art. 9.5 proviso, with reason): the contract continues"),
    ContractEvents.Terminated: NotificationType(
        "contract.terminated", 1, _terminated, description="the contract ended (reason and article)"),
    ContractEvents.CreditGranted: NotificationType(
        "sla.claim_decided", 1, _claim_granted, description="an SLA claim was decided (granted or rejected)"),
    ContractEvents.CreditRejected: NotificationType(
        "sla.claim_decided", 1, _claim_rejected, description="an SLA claim was decided (granted or rejected)"),
    ContractEvents.StoredDataDeleted: NotificationType(
        "stored_data.deletion_due", 1, _stored_data_deleted,
        description="the retention period has passed: purge the customer's stored data (Art. 15.3)"),
    ContractEvents.DataDeleted: NotificationType(  # stores written before issue 15: the same instruction
        "stored_data.deletion_due", 1, _data_deleted,
        description="the retention period has passed: purge the customer's stored data (Art. 15.3)"),
    ServiceEvents.DiscontinuationAnnounced: NotificationType(
        "service.discontinuation_announced", 1, _discontinuation_announced, article="Art. 18",
        description="every contract of the service ends on discontinue_on"),
    ServiceEvents.DiscontinuationCompleted: NotificationType(
        "service.discontinued", 1, _discontinuation_completed, description="the discontinuation was carried out"),
    ServiceEvents.TermsChangeAnnounced: NotificationType(
        "terms.change_announced", 1, _terms_announced, article="Art. 28",
        description="the terms change on effective_on; a customer who objects may terminate before"),
    ServiceEvents.TermsChangeTookEffect: NotificationType(
        "terms.change_took_effect", 1, _terms_took_effect, description="the announced terms are now in force"),
}

VARIANTS: Mapping[NotificationType, Callable[[Any], NotificationType]] = {
    INVOICE_ISSUED: lambda e: CREDIT_NOTE_ISSUED if e.document["document_type"] == "credit_note" else INVOICE_ISSUED,
}
"""A row whose event class carries two kinds of fact: the type is chosen from the event."""

NOT_NOTIFIED: Mapping[type, str] = {  # every other Contract event, and why no system is told of it
    ContractEvents.Opened: "internal: the contract record exists; Applied / TrialStarted follow",
    ContractEvents.TrialStarted: "carries contractor information only; the billing system made the request",
    ContractEvents.TrialExpired: "planned: reminder.trial_ending / contract.trial_expired",
    ContractEvents.Applied: "answered synchronously to the billing system that applied",
    ContractEvents.Approved: "answered synchronously to the caller",
    ContractEvents.Rejected: "answered synchronously to the caller",
    ContractEvents.ServicePeriodStarted: "invoice.issued follows (the invoice the period start issues)",
    ContractEvents.Renewed: "invoice.issued follows (the invoice the renewal issues)",
    ContractEvents.ChangeRequested: "answered synchronously to the caller",
    ContractEvents.GradeChanged: "answered synchronously; invoice.issued follows for an upgrade charge",
    ContractEvents.UsersChanged: "answered synchronously; invoice.issued follows for an upgrade charge",
    ContractEvents.TerminationNoticed: "answered synchronously; contract.terminated follows at the end",
    ContractEvents.SlaBreachClaimed: "answered synchronously with the assessment; sla.claim_decided follows",
    ContractEvents.ContractorInfoChanged: "personal data only",
    ContractEvents.ContractorDataErased: "internal: the keys are destroyed; the platform acts on StoredDataDeleted",
    ContractEvents.PrivacyRequestAnswered: "answered synchronously to the operator who acted on the request",
    ContractEvents.WriteOffReversed: "follows payment.reversed of the same transfer (its fee shortfall is owed again)",
}
"""Contract events deliberately not pushed (``tests/unit/test_notifications.py`` checks that every
Contract event class is either in ``NOTIFICATION_TYPES`` or here, so a new event is a decision)."""

ALL_TYPES: tuple[NotificationType, ...] = (*NOTIFICATION_TYPES.values(), CREDIT_NOTE_ISSUED)
TYPE_NAMES: tuple[str, ...] = tuple(sorted({t.name for t in ALL_TYPES}))
NOTICE_TYPES: Mapping[str, str] = {t.name: t.article for t in ALL_TYPES if t.article}


def notification_type(event: Any) -> NotificationType | None:
    kind = NOTIFICATION_TYPES.get(type(event))
    variant = VARIANTS.get(kind) if kind is not None else None
    return variant(event) if variant is not None else kind


def notification_id(event: Any, kind: NotificationType) -> uuid.UUID:
    """Stable id of the notification of ``event``: the same for every endpoint, attempt, redelivery
    and rebuild (the event's aggregate and version identify it)."""
    return uuid.uuid5(NOTIFICATION_NAMESPACE, f"{event.originator_id}\x1f{event.originator_version}\x1f{kind.name}")


def contract_of(event: Any) -> uuid.UUID | None:
    """The contract an event concerns (``None`` for service-wide facts)."""
    return event.originator_id if isinstance(event, Contract.Event) else None


def service_of(event: Any) -> str | None:
    service = getattr(event, "service", None)
    return service if isinstance(service, str) else None


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(event: Any, position: int, kind: NotificationType, *, personal: bool) -> Payload:
    """The notification as sent: stable id, type, payload version, the event's position and time,
    and the payload, with personal fields redacted unless ``personal``."""
    data = kind.build(event)
    if not personal:
        data = {k: (REDACTED if k in kind.personal and v is not None else v) for k, v in data.items()}
    return {
        "id": str(notification_id(event, kind)),
        "type": kind.name,
        "version": kind.version,
        "position": position,
        "aggregate_id": str(event.originator_id),
        "occurred_at": instant(event.timestamp),
        "personal_data": personal,
        "data": data,
    }


def encode(body: Payload) -> bytes:
    """The exact bytes sent and signed (UTF-8 JSON, keys sorted, no spaces)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
