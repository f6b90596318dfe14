"""Spec 12 (Art. 9.5, 18, 28): notifications derived from the event stream, signed, retried,
ordered per contract, delivered to real HTTP receivers on 127.0.0.1; on SQLite and PostgreSQL.

Expected amounts come from the rule book: the April invoice of a kintone standard x 10 monthly
contract is 12,000 (campaign price 1,200 x 10) + 10,000 (initial fee) + 10 % tax 2,200 = 24,200
yen, due 2026-05-31 (Art. 9); overdue the day after (spec 7)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from app_kit import CONTRACTOR
from docs_receiver import documented_verify
from receivers import always, fails_then_recovers, hangs, slow, wait_until
from webhook_kit import make_hub, overdue_contract

from application.notifications.ports import DELIVERED, DISABLED, FAILED


def test_spec12_signed_notifications_with_stable_ids_verified_by_the_documented_receiver(hub, receiver):
    r = receiver(always(200))
    endpoint, secret = hub.register(r.url)
    cid, april = overdue_contract(hub.app)
    hub.app.record_payment(cid, april, 24_200, date(2026, 6, 2), datetime(2026, 6, 2, 1, tzinfo=UTC))
    hub.pump()
    assert [b["type"] for b in r.bodies()] == ["invoice.overdue", "payment.received"]
    overdue, paid = r.bodies()
    assert overdue["data"] == {"contract_id": str(cid), "invoice_id": str(april), "due_on": "2026-05-31",
                               "unpaid": 24_200, "overdue_on": "2026-06-01"}
    assert paid["data"]["amount"] == 24_200 and paid["data"]["paid_on"] == "2026-06-02"
    assert overdue["version"] == 1 and overdue["position"] < paid["position"]
    verify = documented_verify()
    for got in r.received:
        assert got.headers["contracts-notification-id"] == got.json["id"]
        assert verify(got.headers["contracts-signature"], got.body, secret, time.time())
        assert not verify(got.headers["contracts-signature"], got.body + b" ", secret, time.time())
        assert not verify(got.headers["contracts-signature"], got.body, secret + "x", time.time())
        assert not verify(got.headers["contracts-signature"], got.body, secret, time.time() + 301)  # replay
    # the id is derived from the event: a redelivery (and any other endpoint) gets the same id
    hub.parts.webhooks.redeliver(endpoint.endpoint_id, datetime.now(UTC), notification_id=overdue["id"])
    hub.pump()
    assert [b["id"] for b in r.bodies()] == [overdue["id"], paid["id"], overdue["id"]]
    other = receiver(always(200))
    hub.register(other.url)
    hub.parts.webhooks.redeliver(hub.store.list_endpoints()[1].endpoint_id, datetime.now(UTC),
                                 from_position=1, to_position=paid["position"])
    hub.pump()
    assert [b["id"] for b in other.bodies()] == [overdue["id"], paid["id"]]


def test_spec12_a_failing_receiver_is_retried_with_back_off_until_it_recovers(hub, receiver):
    r = receiver(fails_then_recovers(3, 503))
    endpoint, _ = hub.register(r.url)
    cid, _ = overdue_contract(hub.app)
    hub.parts.start()
    assert wait_until(lambda: len(r.answered) == 4, 15)
    d = hub.store.deliveries(endpoint.endpoint_id, 0, 10, None)[0]
    assert wait_until(lambda: hub.parts.webhooks.delivery(endpoint.endpoint_id, d.row.notification_id).status
                      == DELIVERED, 5)
    record = hub.parts.webhooks.delivery(endpoint.endpoint_id, d.row.notification_id)
    assert [a.status_code for a in record.history] == [503, 503, 503, 200]
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(record.history, record.history[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2  # 0.05 s doubled after each failure
    assert len({b["id"] for b in r.bodies()}) == 1  # the same notification every time
    assert hub.store.get_endpoint(endpoint.endpoint_id).failing_since is None  # healthy again


def test_spec12_a_hanging_receiver_times_out_and_holds_up_no_other_endpoint(hub, receiver):
    stuck = receiver(hangs(), hang_seconds=3)
    fine = receiver(always(200))
    stuck_endpoint, _ = hub.register(stuck.url)
    hub.register(fine.url)
    overdue_contract(hub.app)
    overdue_contract(hub.app)
    hub.parts.start()
    assert wait_until(lambda: len(fine.received) == 2, 5)  # within the 1 s timeout of the other
    assert wait_until(lambda: any(d.last_error for d in hub.store.deliveries(stuck_endpoint.endpoint_id, 0, 10, None)
                                  if d.attempts), 5)
    errors = {d.last_error for d in hub.store.deliveries(stuck_endpoint.endpoint_id, 0, 10, None) if d.attempts}
    assert errors and all(e.startswith("timeout") for e in errors)


def test_spec12_a_slow_receiver_within_the_timeout_is_delivered_with_its_latency(hub, receiver):
    r = receiver(slow(0.5))
    endpoint, _ = hub.register(r.url)
    overdue_contract(hub.app)
    hub.pump()
    [d] = hub.store.deliveries(endpoint.endpoint_id, 0, 10, None)
    record = hub.parts.webhooks.delivery(endpoint.endpoint_id, d.row.notification_id)
    assert record.status == DELIVERED and record.history[0].status_code == 200
    assert 500 <= record.history[0].latency_ms < 1000


def test_spec12_a_contracts_later_notification_waits_for_the_earlier_one(hub, receiver):
    """Contract A's overdue notice fails twice: A's payment waits for it; B's notice goes ahead."""
    a_failures = []

    def behaviour(n, got):
        body = got.json
        if body["aggregate_id"] == str(a) and body["type"] == "invoice.overdue" and len(a_failures) < 2:
            a_failures.append(n)
            return 503
        return 200
    r = receiver(behaviour)
    hub.register(r.url)
    a, a_april = overdue_contract(hub.app)
    hub.app.record_payment(a, a_april, 24_200, date(2026, 6, 2), datetime(2026, 6, 2, 1, tzinfo=UTC))
    b, _ = overdue_contract(hub.app)
    hub.parts.start()
    assert wait_until(lambda: len(r.answered) == 5, 15)
    order = [(body["aggregate_id"], body["type"]) for body in r.bodies()]
    assert [t for aggregate, t in order if aggregate == str(a)] == [
        "invoice.overdue", "invoice.overdue", "invoice.overdue", "payment.received"]
    assert [t for aggregate, t in order if aggregate == str(b)] == ["invoice.overdue"]
    assert order.index((str(b), "invoice.overdue")) < order.index((str(a), "payment.received"))
    assert order.index((str(b), "invoice.overdue")) < 3  # not held up by A's retries


def test_spec12_an_endpoint_failing_for_the_policy_period_is_disabled_and_the_operator_told(tmp_path, receiver):
    """POLICY webhook_disable_after_days and webhook_retry_days shrunk to 1.5 s: every attempt fails,
    so the notification is given up and the endpoint disabled, with the reason on record."""
    days = 1.5 / 86400
    hub = make_hub(tmp_path, webhook_retry_days=days, webhook_disable_after_days=days)
    try:
        r = receiver(always(500))
        endpoint, _ = hub.register(r.url)
        overdue_contract(hub.app)
        hub.parts.start()
        assert wait_until(lambda: hub.store.get_endpoint(endpoint.endpoint_id).status == DISABLED, 10)
        found = hub.store.get_endpoint(endpoint.endpoint_id)
        assert "every delivery failed since" in found.disabled_reason
        log = hub.store.endpoint_log(endpoint.endpoint_id)
        assert [(e.action, e.actor) for e in log][-1] == ("disabled", "webhooks (automatic)")
        assert wait_until(lambda: hub.store.deliveries(endpoint.endpoint_id, 0, 10, None)[0].status
                          in (FAILED, "pending"), 2)
        sent = len(r.received)
        time.sleep(0.5)
        assert len(r.received) == sent  # nothing more is sent to a disabled endpoint
    finally:
        hub.close()


def test_spec10_personal_fields_are_redacted_unless_the_endpoint_may_receive_them(hub, receiver):
    plain, trusted = receiver(always(200)), receiver(always(200))
    hub.register(plain.url, ["payment.received"])
    hub.register(trusted.url, ["payment.received"], personal=True)
    cid, april = overdue_contract(hub.app)
    hub.app.record_payment(cid, april, 24_200, date(2026, 6, 2), datetime(2026, 6, 2, 1, tzinfo=UTC),
                           reference="FURIKOMI-0001")
    hub.pump()
    [p] = plain.bodies()
    [t] = trusted.bodies()
    assert p["data"]["reference"] == "[redacted]" and p["personal_data"] is False
    assert t["data"]["reference"] == "FURIKOMI-0001" and t["personal_data"] is True
    assert p["id"] == t["id"]


def test_spec12_a_rolled_secret_keeps_the_old_one_signing_during_the_overlap(hub, receiver):
    r = receiver(always(200))
    endpoint, old = hub.register(r.url)
    now = datetime.now(UTC)
    new = hub.parts.webhooks.admin.roll_secret(endpoint.endpoint_id, timedelta(hours=1), now, "test-operator")
    overdue_contract(hub.app)
    hub.pump()
    verify = documented_verify()
    [got] = r.received
    header = got.headers["contracts-signature"]
    assert header.count("v1=") == 2
    assert verify(header, got.body, new, time.time()) and verify(header, got.body, old, time.time())
    newer = hub.parts.webhooks.admin.roll_secret(endpoint.endpoint_id, timedelta(0), now, "test-operator")
    hub.parts.webhooks.redeliver(endpoint.endpoint_id, datetime.now(UTC), notification_id=got.json["id"])
    hub.pump()
    header = r.received[-1].headers["contracts-signature"]
    assert header.count("v1=") == 1 and verify(header, r.received[-1].body, newer, time.time())
    assert not verify(header, r.received[-1].body, new, time.time())


def test_spec12_endpoints_receive_what_is_recorded_after_their_registration_and_only_their_types(hub, receiver):
    early_cid, _ = overdue_contract(hub.app)
    r = receiver(always(200))
    hub.register(r.url, ["contract.terminated", "invoice.overdue"])
    cid, _ = overdue_contract(hub.app)
    hub.app.terminate_for_cause(cid, "Art. 23.1.1", datetime(2026, 6, 10, 1, tzinfo=UTC))
    hub.pump()
    assert [(b["aggregate_id"], b["type"]) for b in r.bodies()] == [(str(cid), "invoice.overdue"),
                                                                   (str(cid), "contract.terminated")]
    terminated = r.bodies()[1]["data"]
    # Art. 23: immediate; retention 60 days after the end (spec 10): 2026-06-10 + 60 = 2026-08-09
    assert terminated == {"contract_id": str(cid), "reason": "for_cause", "article": "Art. 23.1.1",
                          "ended_on": "2026-06-10", "retention_until": "2026-08-09"}
    assert str(early_cid) not in {b["aggregate_id"] for b in r.bodies()}


def test_art_15_3_stored_data_deletion_is_pushed_to_the_platform(hub, receiver):
    """Spec 10 / 12: ended for cause 2026-06-10, stored data deleted 60 days later, 2026-08-09:
    StoredDataDeleted is the platform's instruction (contract, service, date); no personal data."""
    r = receiver(always(200))
    hub.register(r.url, ["stored_data.deletion_due"])
    cid, _ = overdue_contract(hub.app)
    hub.app.terminate_for_cause(cid, "Art. 23.1.1", datetime(2026, 6, 10, 1, tzinfo=UTC))
    hub.app.delete_stored_data(cid, date(2026, 8, 9))
    hub.pump()
    [body] = r.bodies()
    assert body["type"] == "stored_data.deletion_due"
    assert body["data"] == {"contract_id": str(cid), "service": "kintone", "deleted_on": "2026-08-09"}


def test_spec12_a_deleted_endpoint_gets_nothing_more_and_its_secret_is_gone(hub, receiver):
    r = receiver(always(200))
    endpoint, _ = hub.register(r.url)
    overdue_contract(hub.app)
    hub.parts.webhooks.deriver.catch_up()
    hub.parts.webhooks.admin.delete(endpoint.endpoint_id, datetime.now(UTC), "test-operator")
    hub.pump()
    assert r.received == []
    assert hub.store.secrets(endpoint.endpoint_id) is None
    assert [d.status for d in hub.store.deliveries(endpoint.endpoint_id, 0, 10, None)] == ["cancelled"]


def test_spec12_the_queue_is_derived_exactly_once_by_racing_derivers(hub, receiver):
    """Two derivers over the same store: every (notification, endpoint) is queued once."""
    from application.notifications.queue import QueueDeriver

    r = receiver(always(200))
    endpoint, _ = hub.register(r.url)
    for _ in range(5):
        overdue_contract(hub.app)
    import threading

    other = QueueDeriver(hub.app, hub.store, hub.parts.webhooks.clock, batch_size=3)
    mine = QueueDeriver(hub.app, hub.store, hub.parts.webhooks.clock, batch_size=2)
    errors: list[BaseException] = []

    def run(d: QueueDeriver) -> None:
        from application.projections.ports import StalePosition
        while True:
            try:
                if not d.run_once():
                    return
            except StalePosition:
                continue
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    threads = [threading.Thread(target=run, args=(d,)) for d in (other, mine)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    rows = hub.store.deliveries(endpoint.endpoint_id, 0, 100, None)
    assert len(rows) == 5 and len({d.row.notification_id for d in rows}) == 5
    assert hub.store.position() == hub.app.recorder.max_notification_id()


def test_art18_art28_announcements_are_pushed_and_recorded_as_the_contracts_notices(hub, receiver):
    r = receiver(always(200))
    endpoint, _ = hub.register(r.url)
    cid, _ = overdue_contract(hub.app)
    at = datetime(2026, 6, 3, 1, tzinfo=UTC)  # 2026-06-03 JST
    hub.app.announce_discontinuation("kintone", date(2026, 9, 3), at)  # Art. 18: 3 months ahead
    hub.app.announce_terms_change("2026-10", date(2026, 10, 1), "new liability clause", at)
    hub.app.notice_suspension(cid, date(2026, 6, 14))  # 14 days overdue (spec 7): stop 14 days later
    hub.pump()
    types = [b["type"] for b in r.bodies()]
    assert types == ["invoice.overdue", "service.discontinuation_announced", "terms.change_announced",
                     "contract.suspension_noticed"]
    suspension = r.bodies()[3]["data"]
    assert suspension["stop_on"] == "2026-06-28" and "non-payment" in suspension["reason"]
    notices = hub.parts.webhooks.notices(hub.app.get_contract(cid))
    assert [(n["article"], n["type"], n["delivered"]) for n in notices] == [
        ("Art. 18", "service.discontinuation_announced", True), ("Art. 28", "terms.change_announced", True),
        ("Art. 9.5", "contract.suspension_noticed", True)]
    assert all(n["delivered_at"] and n["endpoint_id"] == str(endpoint.endpoint_id) for n in notices)
    # a contract of another service is not told of kintone's discontinuation
    other = hub.app.open_contract("CUST-OTHER", "garoon", "standard", 10, {"name": "X"},
                                  datetime(2026, 3, 24, 1, tzinfo=UTC), cycle=None, trial=True)
    assert [n["type"] for n in hub.parts.webhooks.notices(hub.app.get_contract(other.aggregate_id))] == []


def test_rule_7_a_payment_reminder_is_pushed_with_the_unpaid_amount(hub, receiver):
    """Rule book 7 / spec 12: April's 24,200 yen, due 2026-05-31 and overdue since 2026-06-01, is
    reminded 7 days after its due date (POLICY payment_reminder_days_after): 2026-06-07."""
    r = receiver(always(200))
    hub.register(r.url, ["reminder.payment_due"])
    cid, april = overdue_contract(hub.app)
    hub.app.remind_payment(cid, april, "after_due", date(2026, 6, 7))
    hub.pump()
    [body] = r.bodies()
    assert body["type"] == "reminder.payment_due" and body["personal_data"] is False
    assert body["data"] == {"contract_id": str(cid), "invoice_id": str(april), "stage": "after_due",
                            "due_on": "2026-05-31", "unpaid": 24_200, "reminded_on": "2026-06-07"}


def test_rule_book_6_1_issued_invoices_and_credit_notes_are_pushed(hub, receiver):
    """invoice.issued for every issued invoice, credit_note.issued for a credit note (its original named),
    the recipient's name never in the payload. April: 12,000 campaign fee + 10,000 initial fee = 22,000
    taxable at 10 % -> 2,200 tax, 24,200 yen; a credit of 1,000 yen at 10 % -> 1,000 + 100 = 1,100."""
    r = receiver(always(200))
    hub.register(r.url, ["invoice.issued", "credit_note.issued"], personal=True)
    cid, april = overdue_contract(hub.app)
    hub.app.issue_credit_note(cid, april, 1_000, "goodwill", datetime(2026, 6, 3, 1, tzinfo=UTC))
    hub.pump()
    bodies = r.bodies()
    assert [b["type"] for b in bodies] == ["invoice.issued"] * 3 + ["credit_note.issued"]
    first, note = bodies[0]["data"], bodies[-1]["data"]
    assert (first["invoice_id"], first["number"], first["period"], first["total"]) == (
        str(april), "INV-2026-000001", "2026-04", 24_200)
    assert first["rate_totals"] == [{"rate": "0.10", "rate_kind": "standard", "taxable": 22_000, "tax": 2_200}]
    assert (note["document_type"], note["total"], note["original_invoice_id"], note["original_number"]) == (
        "credit_note", 1_100, str(april), "INV-2026-000001")
    assert all(CONTRACTOR["name"] not in str(b) for b in bodies)


def test_rule_12_a_voided_invoice_is_pushed(hub, receiver):
    """Rule book 12: the billing system learned of April's invoice (invoice.issued, 24,200 yen) without
    polling; when an operator voids it (rule book 6.1, before any payment, with a reason) nothing is owed
    on it any more, and the billing system must learn that the same way or it keeps collecting it."""
    r = receiver(always(200))
    hub.register(r.url, ["invoice.voided"])
    cid, april = overdue_contract(hub.app)
    hub.app.void_invoice(cid, april, "issued to the wrong customer", datetime(2026, 6, 2, 16, tzinfo=UTC))
    hub.pump()
    [body] = r.bodies()
    assert body["type"] == "invoice.voided"
    assert body["data"] == {"contract_id": str(cid), "invoice_id": str(april), "reason": "issued to the wrong customer",
                            "voided_on": "2026-06-03"}  # 16:00Z is 01:00 JST the next day


def test_rule_12_art_9_4_a_waived_interest_is_pushed(hub, receiver):
    """Rule book 12, Art. 9.4: April's 24,200 yen, due 2026-05-31, paid 2026-06-20: 19 days late (06-01 to
    06-19) -> floor(24,200 x 0.145 x 19 / 365) = floor(182.66) = 182 yen of late interest, a claim the billing
    system collects (it would be billed on July's invoice). An operator waives it with a reason: the billing
    system must learn that it is no longer owed, as it learns of a voided invoice."""
    r = receiver(always(200))
    hub.register(r.url, ["invoice.interest_waived"])
    cid, april = overdue_contract(hub.app)
    hub.app.record_payment(cid, april, 24_200, date(2026, 6, 20), datetime(2026, 6, 20, 1, tzinfo=UTC))
    hub.app.waive_interest(cid, april, "goodwill: first delay", datetime(2026, 6, 21, 16, tzinfo=UTC))
    hub.pump()
    [body] = r.bodies()
    assert (body["type"], body["version"]) == ("invoice.interest_waived", 1)
    assert body["data"] == {"contract_id": str(cid), "invoice_id": str(april), "amount": 182,
                            "reason": "goodwill: first delay", "waived_on": "2026-06-22"}  # 16:00Z: 01:00 JST 06-22
