"""Spec 12 rules without a database: the back-off and give-up POLICY, the signature scheme
(Stripe's: HMAC-SHA256 over "{t}.{body}"), the one table of notification types and stable ids."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from application.notifications import signing
from application.notifications.catalog import (
    NOTIFICATION_TYPES,
    REDACTED,
    TYPE_NAMES,
    encode,
    envelope,
    notification_id,
    notification_type,
)
from application.notifications.ports import Secrets
from domain.contract import ContractEvents
from domain.notifications import DeliveryPolicy

T0 = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


def test_spec12_back_off_doubles_from_30_seconds_up_to_6_hours() -> None:
    p = DeliveryPolicy()
    gaps = [(p.next_attempt(n, T0) - T0).total_seconds() for n in range(1, 13)]
    assert gaps == [30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600]


def test_spec12_retried_for_3_days_then_given_up_and_endpoint_disabled_after_3_days() -> None:
    p = DeliveryPolicy()
    assert not p.gives_up(T0, T0 + timedelta(days=3) - timedelta(seconds=1))
    assert p.gives_up(T0, T0 + timedelta(days=3))
    assert not p.disables(T0, T0 + timedelta(days=2, hours=23))
    assert p.disables(T0, T0 + timedelta(days=3))
    with pytest.raises(ValueError):
        p.next_attempt(0, T0)


def test_spec12_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"x"}'
    expected = hmac.new(b"whsec_test", b"1796115960." + body, hashlib.sha256).hexdigest()
    header = signing.signature_header(["whsec_test"], 1796115960, body)
    assert header == f"t=1796115960,v1={expected}"
    assert signing.verify(header, body, "whsec_test", now=1796115960 + 300) == 1796115960
    with pytest.raises(signing.SignatureError):
        signing.verify(header, body, "whsec_test", now=1796115960 + 301)  # 5 minutes' tolerance
    with pytest.raises(signing.SignatureError):
        signing.verify(header, body, "whsec_other", now=1796115960)
    with pytest.raises(signing.SignatureError):
        signing.verify("v1=" + expected, body, "whsec_test", now=1796115960)


def test_spec12_during_a_secret_overlap_both_secrets_sign() -> None:
    secrets = Secrets("whsec_new", "whsec_old", T0 + timedelta(hours=24))
    assert secrets.signing(T0) == ["whsec_new", "whsec_old"]
    assert secrets.signing(T0 + timedelta(hours=24)) == ["whsec_new"]
    header = signing.signature_header(secrets.signing(T0), 1, b"{}")
    assert header.count(",v1=") == 2
    assert signing.verify(header, b"{}", "whsec_old", now=1) == 1


def _overdue_event() -> object:
    cls = ContractEvents.PaymentOverdue
    return cls(originator_id=uuid.UUID(int=7), originator_version=9, timestamp=T0,
               invoice_id=uuid.UUID(int=8), due_on=date(2026, 5, 31), unpaid=24_200, overdue_on=date(2026, 6, 1))


def test_spec12_one_row_per_event_class_with_documented_stable_names() -> None:
    assert all(isinstance(cls, type) for cls in NOTIFICATION_TYPES)
    assert TYPE_NAMES == tuple(sorted(TYPE_NAMES))
    assert all(t.name.count(".") == 1 and t.version >= 1 for t in NOTIFICATION_TYPES.values())
    documented = open("docs/webhooks.md", encoding="utf-8").read()
    for name in TYPE_NAMES:
        assert f"`{name}`" in documented, f"{name} is not documented in docs/webhooks.md"


def test_spec12_the_notification_id_is_derived_from_the_event_and_the_body_is_stable() -> None:
    event = _overdue_event()
    kind = notification_type(event)
    assert kind is not None and kind.name == "invoice.overdue"
    nid = notification_id(event, kind)
    assert nid == uuid.uuid5(uuid.UUID("5d0f3c8e-61a2-4b7e-9f14-2c8e7a9b3d60"),
                             f"{uuid.UUID(int=7)}\x1f9\x1finvoice.overdue")
    body = envelope(event, 42, kind, personal=False)
    assert body["id"] == str(nid) and body["position"] == 42 and body["occurred_at"] == "2026-06-01T00:00:00Z"
    assert body["data"] == {"contract_id": str(uuid.UUID(int=7)), "invoice_id": str(uuid.UUID(int=8)),
                            "due_on": "2026-05-31", "unpaid": 24_200, "overdue_on": "2026-06-01"}
    assert encode(body) == encode(envelope(event, 42, kind, personal=False))
    assert b" " not in encode(body)


def test_spec10_personal_fields_of_a_payload_are_redacted() -> None:
    cls = ContractEvents.PaymentReceived
    event = cls(originator_id=uuid.UUID(int=7), originator_version=10, timestamp=T0, invoice_id=uuid.UUID(int=8),
                amount=1000, paid_on=date(2026, 6, 2), at=T0, reference="BANK-REF-1", transfer_id=None,
                source="transfer")
    kind = notification_type(event)
    assert kind is not None
    assert envelope(event, 1, kind, personal=False)["data"]["reference"] == REDACTED
    assert envelope(event, 1, kind, personal=True)["data"]["reference"] == "BANK-REF-1"


def test_spec12_every_contract_event_is_notified_or_deliberately_not() -> None:
    """A new Contract event needs a decision: a row in NOTIFICATION_TYPES (a notification type,
    documented in docs/webhooks.md) or an entry in NOT_NOTIFIED with the reason."""
    from application.notifications.catalog import NOT_NOTIFIED

    undecided = [cls.__name__ for cls in ContractEvents.all() if cls not in NOTIFICATION_TYPES
                 and cls not in NOT_NOTIFIED]
    assert not undecided, ("add a row to NOTIFICATION_TYPES or NOT_NOTIFIED in application/notifications/catalog.py "
                           f"for: {', '.join(undecided)}")
    assert not set(NOT_NOTIFIED) & set(NOTIFICATION_TYPES)
