"""JSON representations of aggregates and events (integer yen, ISO 8601, months ``YYYY-MM``).

Personal data (contractor information, claim evidence, invoice recipients, payers) is shown to
the billing and operator roles only; auditors read amounts, dates and decisions. A personal field
that is withheld reads as ONE typed object everywhere (``withheld``; the OpenAPI schema
``Redacted``): ``{"object": "redacted", "redacted": true, "reason": "role" | "erased"}``. ``erased``
(its keys were destroyed: ``ContractorDataErased``, or the contacts on a privacy-policy-7
request) wins over ``role``, so an auditor also learns that the data is gone, and nothing else.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from api.auth import Principal
from api.json_body import dumps
from application.actors import ACTOR_FIELD, actor_of
from application.audit import retention_document
from application.contract_history import ClaimFacts
from application.undecodable import UndecodableEvent
from domain.catalog import PricePlan
from domain.contract import Contract
from domain.personal_data import PERSONAL_FIELD_NAMES, PERSONAL_FIELDS, is_erased
from domain.policy import Policy
from domain.retention import CONTACTS_ERASED
from domain.values import PRICE_PLAN, TEXT_FORMS, UTC_INSTANT

_EVENT_META = ("originator_id", "originator_version", "timestamp", "originator_topic")


def jsonable(value: Any) -> Any:
    """Domain values to JSON values: UUID and Decimal as strings (no floats), dates ISO 8601."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, datetime):
        return UTC_INSTANT.encode(value)
    text = TEXT_FORMS.get(type(value))
    if text is not None:
        return text.encode(value)
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, PricePlan):
        return jsonable(PRICE_PLAN.encode(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float):
        raise TypeError("floats have no place in money or dates")
    return str(value)


REDACTED_REASONS = ("role", "erased")
"""Why a personal field is withheld: ``role`` (the reader may not see personal data: auditors) or
``erased`` (its keys were destroyed, Art. 13 and the records rule, or a privacy-policy-7 request)."""


def withheld(reason: str) -> dict[str, Any]:
    """The one representation of a withheld personal field (OpenAPI ``Redacted``)."""
    assert reason in REDACTED_REASONS
    return {"object": "redacted", "redacted": True, "reason": reason}


def personal(value: Any, principal: Principal) -> Any:
    """A personal field as the API answers it: its value, or ``withheld(...)``. Empty values stay
    empty (nothing is withheld); a contractor whose contacts were erased on request keeps its
    record fields with ``contacts`` withheld (erased)."""
    if is_erased(value):
        return withheld("erased")
    if not value:
        return value
    if not principal.sees_personal_data:
        return withheld("role")
    if isinstance(value, Mapping) and CONTACTS_ERASED in value:
        return {**value, CONTACTS_ERASED: withheld("erased")}
    return value


def redact(data: dict[str, Any], principal: Principal, fields: Any = PERSONAL_FIELD_NAMES) -> dict[str, Any]:
    """``data`` with each personal field in ``fields`` as ``personal`` answers it."""
    return {k: (personal(v, principal) if k in fields else v) for k, v in data.items()}


def event_view(event: Any, principal: Principal, *, position: int | None = None,
               topic: str | None = None) -> dict[str, Any]:
    qualname = (topic.partition(":")[2] if topic else type(event).__qualname__) or type(event).__qualname__
    aggregate_type, _, name = qualname.rpartition(".")
    data = {k: v for k, v in vars(event).items() if k not in _EVENT_META and k != ACTOR_FIELD}
    actor = actor_of(event)
    view: dict[str, Any] = {}
    if position is not None:
        view["position"] = position
    view.update({
        "object": "event",
        "aggregate_type": aggregate_type,
        "aggregate_id": jsonable(event.originator_id),
        "version": event.originator_version,
        "type": name,
        "recorded_at": jsonable(event.timestamp),
        "actor": actor.as_dict() if actor is not None else None,
        # the personal fields of this event's class (a payment's ``reference`` is the payer's,
        # a contract's ``reference`` on Opened is the billing system's own label)
        "data": redact(jsonable(data), principal, PERSONAL_FIELDS.get(type(event), ())),
    })
    return view


def undecodable_view(damaged: UndecodableEvent, *, position: int | None = None,
                     topic: str | None = None) -> dict[str, Any]:
    """A feed entry for a stored event that does not decode: where it is and why, no data."""
    qualname = (topic or damaged.topic).partition(":")[2]
    aggregate_type, _, name = qualname.rpartition(".")
    view: dict[str, Any] = {} if position is None else {"position": position}
    view.update({"object": "event", "aggregate_type": aggregate_type, "aggregate_id": str(damaged.aggregate_id),
                 "version": damaged.version, "type": name, "recorded_at": None, "actor": None, "data": None,
                 "undecodable": True, "reason": damaged.reason})
    return view


def contract_view(contract: Contract, principal: Principal, policy: Policy) -> dict[str, Any]:
    plan = contract.plan
    view: dict[str, Any] = {
        "id": str(contract.id),
        "object": "contract",
        "contract_id": str(contract.id),
        "version": contract.version,
        "customer_number": contract.customer_number,
        "service": contract.service,
        "reference": contract.reference,
        "state": contract.state.value,
        "grade": plan.grade if plan else None,
        "users": contract.users,
        "billing_cycle": contract.cycle.value if contract.cycle else None,
        "prices": jsonable({"monthly_price": plan.monthly_price, "annual_price": plan.annual_price,
                            "initial_fee": plan.initial_fee, "min_users": plan.min_users,
                            "campaign": plan.campaign}) if plan else None,
        "trial": {"started_on": jsonable(contract.trial_started_on),
                  "ends_on": jsonable(contract.trial_ends_on)} if contract.trial_started_on else None,
        "concluded_on": jsonable(contract.concluded_on),
        "first_month": jsonable(contract.first_month),
        "period": {"start": jsonable(contract.period_start), "end": jsonable(contract.period_end)}
        if contract.period_start else None,
        "next_month_start": jsonable(contract.next_month_start()),
        "pending_changes": [
            {"change_id": str(c.change_id), "effective_month": str(c.effective_month), "grade": c.plan.grade,
             "users": c.users, "upgrade_charge": c.upgrade_charge, "remaining_months": c.remaining_months}
            for c in contract.pending_changes
        ],
        "termination_month": jsonable(contract.termination_month),
        "overdue_invoices": sorted(str(i) for i in contract.overdue),
        "outstanding": contract.ledger.outstanding(),
        "suspension_stop_on": jsonable(contract.suspension_stop_on),
        "ended_on": jsonable(contract.ended_on),
        "termination_reason": jsonable(contract.termination_reason),
        "termination_article": contract.termination_article,
        "retention_until": jsonable(contract.retention_until),
        "extension_days": contract.extension_days,
        "data_deleted": contract.data_deleted,  # deprecated: contractor data erased (see retention)
        "retention": retention_document(contract, policy),
        "contractor": _contractor(contract, principal),
    }
    return view


@dataclass(frozen=True)
class RenderedContract:
    """A contract's view as JSON bytes at one version, for one role, and what ``Webhooks.notices``
    reads of the contract (``id``, ``service``, ``created_on``: fixed at its opening)."""

    id: uuid.UUID
    version: int
    role: str
    body: bytes
    service: str
    created_on: datetime


class RenderedContracts:
    """Each contract's view rendered once per version and role (issue 21: a GET folded, viewed and
    encoded the contract every time, and needed it in this process's aggregate cache).

    The view is a function of the contract's state, which its version names, and of the reader's
    role (redaction). A reader asks ``get`` with the version the store holds now (read on every
    request, so a change by another process is never missed: read-your-writes and the ETag stay
    exact across processes) and renders anew (``put``) when the kept view is of another version.
    Bounded: one entry per (contract, role), the least recently used dropped first."""

    def __init__(self, policy: Policy, max_entries: int = 8192) -> None:
        self.policy, self.max_entries = policy, max_entries
        self._entries: OrderedDict[tuple[uuid.UUID, str], RenderedContract] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, contract_id: uuid.UUID, version: int, principal: Principal) -> RenderedContract | None:
        key = (contract_id, principal.role)
        with self._lock:
            found = self._entries.get(key)
            if found is None or found.version != version:
                return None
            self._entries.move_to_end(key)
            return found

    def latest(self, contract_id: uuid.UUID, principal: Principal) -> RenderedContract | None:
        """The view kept for the contract and the reader's role, whatever its version (what stays
        true of the contract at every version: ``service``, ``created_on``)."""
        with self._lock:
            return self._entries.get((contract_id, principal.role))

    def put(self, contract: Contract, principal: Principal) -> RenderedContract:
        rendered = RenderedContract(contract.id, contract.version, principal.role,
                                    dumps(contract_view(contract, principal, self.policy)), contract.service,
                                    contract.created_on)
        key = (contract.id, principal.role)
        with self._lock:
            kept = self._entries.get(key)
            if kept is None or kept.version <= rendered.version:  # never back to an older version
                self._entries[key] = rendered
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return rendered


def _contractor(contract: Contract, principal: Principal) -> Any:
    """null before there is any; withheld (erased) once the contractor data is erased, whatever
    the aggregate keeps (nothing, or the sealed fields read back as erased)."""
    if contract.data_deleted:
        return withheld("erased")
    return personal(dict(contract.contractor), principal) if contract.contractor else None


def invoice_resource(invoice: dict[str, Any]) -> dict[str, Any]:
    """An invoice document with the resource's ``id`` and ``object``."""
    return {"id": invoice["invoice_id"], "object": "invoice", **invoice}


CLAIM_INSTANTS = ("claimed_at", "decided_at", "started_at", "ended_at")


def claim_document(contract_id: Any, facts: ClaimFacts) -> dict[str, Any]:
    """A claim as of a date or an instant, folded from the contract's events, in the shape the
    read side keeps for the current one (``application.projections.claims.claim_doc``)."""
    o, a, d = facts.outage, facts.assessment, facts.decision
    doc: dict[str, Any] = {
        "contract_id": str(contract_id), "claim_id": str(facts.claim_id), "outage_id": str(o.outage_id),
        "service": o.service, "started_at": jsonable(o.started_at), "ended_at": jsonable(o.ended_at),
        "cause": jsonable(o.cause), "received_on": jsonable(facts.received_on),
        "proof_of_payment": facts.proof_of_payment, "proof_of_breach": facts.proof_of_breach,
        "claimed_at": jsonable(facts.claimed_at), "outage_hours": int(o.duration.total_seconds() // 3600),
        "eligible": a.eligible, "reason": a.reason, "breach_date": jsonable(a.breach_date),
        "breach_month": jsonable(a.breach_month), "credit_days": a.credit_days, "minimum": a.minimum,
        "maximum": a.maximum, "liability_cap": a.liability_cap, "status": facts.status, "remedy": None,
        "amount": None, "decided_at": None,
    }
    if d is not None:
        doc.update({"status": d.status, "decided_at": jsonable(d.at)})
        if d.status == "granted":
            doc.update({"remedy": d.remedy, "amount": d.amount})
        else:
            doc["reason"] = d.reason
    return doc


def utc_text(value: Any) -> Any:
    """An instant the read side kept as ISO 8601 with its offset, as the API writes it: UTC ``Z``."""
    return UTC_INSTANT.encode(datetime.fromisoformat(value)) if isinstance(value, str) else value


def claim_resource(claim: dict[str, Any]) -> dict[str, Any]:
    fixed = {k: utc_text(claim[k]) for k in CLAIM_INSTANTS if k in claim}
    return {"id": claim["claim_id"], "object": "sla_claim", **claim, **fixed}
