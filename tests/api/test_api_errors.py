"""Errors are RFC 9457 problem+json, name the article of a refused rule, never show a stack
trace, and malformed input is 422 and stores nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from api_harness import CONTRACTOR, Harness

PROBLEM_KEYS = {"type", "title", "status", "detail", "article", "field", "instance"}
APPLY = {"customer_number": "C-300", "service": "kintone", "grade": "standard", "users": 10,
         "contractor": CONTRACTOR, "billing_cycle": "monthly"}


def assert_problem(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status and body["type"].startswith("urn:contracts:problem:")
    assert "Traceback" not in r.text
    if field is not None:
        assert body["field"] == field, body
    return body


@pytest.mark.parametrize(("body", "field"), [
    ({**APPLY, "users": "10"}, "users"),  # strict: a string is not a number
    ({**APPLY, "users": 10.0}, "users"),
    ({**APPLY, "users": 0}, "users"),
    ({**APPLY, "users": True}, "users"),
    ({**APPLY, "extra": 1}, "extra"),  # unknown fields are refused
    ({**APPLY, "billing_cycle": "weekly"}, "billing_cycle"),
    ({**APPLY, "contractor": {"name": "A", "password": "x"}}, "contractor.password"),
    ({**APPLY, "service": "kin tone"}, "service"),
    ({k: v for k, v in APPLY.items() if k != "grade"}, "grade"),
    ([], "body"),
])
def test_malformed_input_is_422_and_stores_nothing(api: Harness, body: Any, field: str) -> None:
    problem = assert_problem(api.post("/v1/contracts", body), 422, field)
    assert any(e["field"] == field for e in problem["errors"])
    assert api.event_count() == 0


def test_malformed_json_and_wrong_types_of_dates_and_months(api: Harness) -> None:
    r = api.client.post("/v1/contracts", content=b'{"customer_number": ',
                        headers=api.headers("billing", Content_Type="application/json"))
    assert_problem(r, 422, "body")
    cid = api.concluded("C-301")
    assert_problem(api.post(f"/v1/contracts/{cid}/changes", {"users": 12, "requested_month": "2026-5"}), 422,
                   "requested_month")
    assert_problem(api.post(f"/v1/contracts/{cid}/changes", {"users": 12, "requested_month": "2026-13"}), 422,
                   "requested_month")
    assert_problem(api.post(f"/v1/contracts/{cid}/payments", {"invoice_id": cid, "amount": 1,
                                                              "paid_on": "2026/04/01"}), 422, "paid_on")
    assert_problem(api.post(f"/v1/contracts/{cid}/payments", {"invoice_id": cid, "amount": 10**13,
                                                              "paid_on": "2026-04-01"}), 422, "amount")
    assert_problem(api.post("/v1/outages", {"service": "kintone", "started_at": "2026-04-01T00:00:00",
                                            "ended_at": "2026-04-02T00:00:00Z", "cause": "provider_network"}),
                   422, "started_at")
    assert_problem(api.get("/v1/invoices", params={"month": "April"}), 422, "month")
    assert_problem(api.get("/v1/events", params={"limit": 0}), 422, "limit")
    assert api.event_count() == 5  # Opened, Applied + the customer account's Opened, ContractRegistered


def test_business_refusals_name_their_article(api: Harness) -> None:
    cid = api.apply("C-302")
    refused = assert_problem(api.post(f"/v1/contracts/{cid}/termination-notice", {}), 409)
    assert refused["article"] == "Art. 10.1" and refused["title"] == "Refused by a business rule"
    unknown_grade = assert_problem(api.post("/v1/contracts", {**APPLY, "customer_number": "C-303",
                                                              "grade": "gold"}), 422, "grade")
    assert unknown_grade["article"] == "Art. 7"
    no_cycle = assert_problem(api.post("/v1/contracts", {**APPLY, "customer_number": "C-304",
                                                         "billing_cycle": None}), 422, "billing_cycle")
    assert no_cycle["article"] == "Art. 8"
    duplicate = assert_problem(api.post("/v1/contracts", {**APPLY, "customer_number": "C-302"}), 409)
    assert duplicate["article"] == "Art. 2.1"
    missing = assert_problem(api.get("/v1/contracts/00000000-0000-0000-0000-000000000001"), 404,
                             "contract_id")
    assert missing["article"] == "rule book 3"


def test_unknown_route_and_method(api: Harness) -> None:
    assert_problem(api.client.delete("/v1/contracts", headers=api.headers()), 405)  # GET is contract search now
    assert_problem(api.get("/nowhere"), 404)


def test_unexpected_errors_are_500_with_an_incident_id_and_no_trace(api: Harness,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    api.app.get_contract = boom
    with caplog.at_level(logging.ERROR, logger="api"):
        r = api.get("/v1/contracts/00000000-0000-0000-0000-000000000001")
    body = assert_problem(r, 500)
    assert "secret internal detail" not in r.text and "RuntimeError" not in r.text
    assert body["incident"] and body["incident"] in caplog.text
    assert "secret internal detail" in caplog.text  # the log keeps what the response does not


def test_personal_data_is_not_echoed_in_validation_errors(api: Harness) -> None:
    r = api.post("/v1/contracts", {**APPLY, "contractor": {"name": "Hanako Secret", "phone": "03-0000-0000"}})
    assert_problem(r, 422, "contractor.phone")
    assert "Hanako" not in r.text and "03-0000-0000" not in r.text
