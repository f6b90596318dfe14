"""Personal data (spec 10, Art. 13): which event fields are personal and how they read once
erased or redacted. The one vocabulary of the writer (sealing), the audit export, the API
views and the pages.

- *erased*: the contract's keys were destroyed (``ContractorDataErased``, spec 10): the field
  reads ``ERASED``; only the contacts key (a privacy-policy-7 request): ``ERASED_CONTACTS``.
- *redacted*: the reader may not see personal data (the auditor role, a redacted export): the
  export shows ``REDACTED``, the API ``REDACTED_VALUE``, the pages the word ``REDACTED_WORD``.
"""

from __future__ import annotations

from typing import Any

from domain.contract import ContractEvents
from domain.retention import CONTACTS_ERASED, ERASED_MARK
from domain.settlement import Transfer

PERSONAL_FIELDS: dict[type[Any], tuple[str, ...]] = {
    ContractEvents.TrialStarted: ("contractor",),
    ContractEvents.Applied: ("contractor",),
    ContractEvents.ContractorInfoChanged: ("contractor",),
    ContractEvents.SlaBreachClaimed: ("evidence",),
    ContractEvents.PaymentReceived: ("reference",),
    vars(Transfer)["Received"]: ("payer_name", "bank_reference"),  # rule book 10: often the remitter's name
    ContractEvents.InvoiceIssued: ("recipient",),  # Art. 57-4(1) item 6: the recipient's name
}
"""Event class -> attributes holding personal data (契約者情報, claim evidence text, invoice recipients,
and the payer's reference on a payment: on Japanese bank transfers often the remitter's name, spec 10)."""

PERSONAL_FIELD_NAMES: frozenset[str] = frozenset(name for names in PERSONAL_FIELDS.values() for name in names)

ERASED: dict[str, Any] = {"contractor": {"erased": "true"}, "evidence": "[erased]", "reference": "[erased]",
                          "payer_name": "[erased]", "bank_reference": "[erased]", "recipient": "[erased]"}
"""What a personal field reads as once its keys are destroyed (``ContractorDataErased``, spec 10)."""

ERASED_CONTACTS: dict[str, str] = {CONTACTS_ERASED: ERASED_MARK}
"""What the contacts part of a contractor document reads as once the contacts key is destroyed
(privacy policy 7): merged into the record fields, which stay readable."""

REDACTED: dict[str, Any] = {"contractor": {"redacted": "true"}, "evidence": "[redacted]", "reference": "[redacted]",
                            "payer_name": "[redacted]", "bank_reference": "[redacted]", "recipient": "[redacted]"}
"""What a personal field reads as in an export made with ``redact=True``."""

REDACTED_VALUE = "[redacted]"
"""What the API shows instead of a personal field to a reader who may not see it."""

ERASED_WORD = "erased"
REDACTED_WORD = "redacted"
"""How the pages show an erased field, and a personal field to a reader who may not see it."""


def erased_value(name: str) -> Any:
    """The value personal field ``name`` reads as once erased."""
    return ERASED.get(name, "[erased]")


def redacted_value(name: str) -> Any:
    """The value personal field ``name`` reads as in a redacted export."""
    return REDACTED.get(name, REDACTED_VALUE)


def is_erased(value: Any) -> bool:
    """True when ``value`` is what an erased personal field reads as."""
    return any(value == erased for erased in ERASED.values())
