"""Errors never echo submitted values; they name the field (issue 14 item 8). The payer's
reference on a payment is personal data: redacted for auditors in the feed and the events,
while a contract's own ``reference`` (the billing system's label) is not."""

from __future__ import annotations

from api_harness import CONTRACTOR, Harness, jst

MARK = "ECHO-MARK-7731"
PAYER = f"ﾌﾘｺﾐ ﾀﾛｳ\n{MARK} forged log line"


def _invoice(api: Harness) -> tuple[str, str, int]:
    api.set_clock(jst(2026, 3, 2))
    cid = api.concluded("CUST-ECHO", Idempotency_Key="echo-apply")
    api.set_clock(jst(2026, 4, 2))
    api.advance(cid)
    invoice = api.invoices(cid)[0]
    return cid, invoice["invoice_id"], invoice["total"]


def _no_echo(response: object, *values: str) -> dict[str, object]:
    text = response.text  # type: ignore[attr-defined]
    for value in values:
        assert value not in text and value.encode("unicode_escape").decode() not in text, text
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    return body


def test_art_9_3_a_repeated_payer_reference_is_refused_without_echoing_it(any_api: Harness) -> None:
    api = any_api
    cid, iid, _ = _invoice(api)
    pay = {"invoice_id": iid, "amount": 100, "paid_on": "2026-04-02", "reference": PAYER}
    assert api.post(f"/v1/contracts/{cid}/payments", pay).status_code == 200
    again = api.post(f"/v1/contracts/{cid}/payments", pay)
    assert again.status_code == 409
    body = _no_echo(again, MARK, "ﾌﾘｺﾐ")
    assert body["article"] == "Art. 9.3" and body["field"] == "reference"
    over = api.post(f"/v1/contracts/{cid}/payments", {**pay, "amount": 987654, "reference": "other"})
    assert over.status_code == 409 and _no_echo(over, "987654")["field"] == "amount"
    unknown = api.post(f"/v1/contracts/{cid}/payments", {**pay, "reference": "another",
                                                         "invoice_id": "0" * 8 + "-0000-4000-8000-" + "1" * 12})
    assert unknown.status_code == 422 and _no_echo(unknown, "111111111111")["field"] == "invoice_id"


def test_spec_2_and_art_2_1_refusals_name_the_field_not_the_value(any_api: Harness) -> None:
    api = any_api
    body = {"customer_number": f"CUST-{MARK}", "service": "kintone", "grade": "standard", "users": 10,
            "contractor": CONTRACTOR, "billing_cycle": "monthly", "reference": f"order\n{MARK}-ref"}
    assert api.post("/v1/contracts", body).status_code == 201
    twice = api.post("/v1/contracts", body)
    assert twice.status_code == 409
    assert _no_echo(twice, MARK)["article"] == "Art. 2.1"
    service = api.post("/v1/contracts", {**body, "service": f"evil\n{MARK}"})
    assert service.status_code == 422 and _no_echo(service, MARK)["field"] == "service"
    grade = api.post("/v1/contracts", {**body, "grade": f"gold-{MARK}"})
    assert grade.status_code == 422 and _no_echo(grade, MARK)["field"] == "grade"
    bad_id = api.post("/v1/contracts/not-a-uuid-MARKX/approve")
    assert bad_id.status_code == 422
    assert "`" not in str(bad_id.json()["detail"])  # pydantic's "found `n` at 1" is not repeated


def test_spec_10_the_payer_reference_is_redacted_for_auditors_the_contract_reference_is_not(
        any_api: Harness) -> None:
    api = any_api
    cid, iid, _ = _invoice(api)
    assert api.post(f"/v1/contracts/{cid}/payments", {"invoice_id": iid, "amount": 100, "paid_on": "2026-04-02",
                                                      "reference": PAYER}).status_code == 200
    withheld = {"object": "redacted", "redacted": True, "reason": "role"}
    for role, expected in (("auditor", withheld), ("operator", PAYER)):
        feed = api.get("/v1/events", role, params={"limit": 1000}).json()["events"]
        events = api.get(f"/v1/contracts/{cid}/events", role).json()["events"]
        for listing in (feed, events):
            (payment,) = [e for e in listing if e["type"] == "PaymentReceived"]
            assert payment["data"]["reference"] == expected, role
            (opened,) = [e for e in listing if e["type"] == "Opened" and e["aggregate_id"] == cid]
            assert opened["data"]["reference"] == ""  # the contract's own label is not personal data
