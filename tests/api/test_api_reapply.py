"""A new application after a contract ended opens a new contract (issue 19); a retried application
still finds the contract it opened; a contract that has not ended still refuses a second one (Art. 2.1)."""

from __future__ import annotations

import uuid

from api_harness import CONTRACTOR, Harness

from domain.contract import Contract

BODY = {"customer_number": "RE-1", "service": "kintone", "grade": "standard", "users": 10,
        "contractor": CONTRACTOR, "billing_cycle": "monthly"}


def test_a_new_application_after_a_rejection_opens_a_new_contract(any_api: Harness) -> None:
    api = any_api
    first = api.post("/v1/contracts", BODY).json()["contract_id"]
    assert first == str(Contract.create_id("RE-1", "kintone"))  # existing contracts keep their ids
    assert api.post(f"/v1/contracts/{first}/reject", {"article": "Art. 2.4.1"}).status_code == 200
    key = str(uuid.uuid4())
    again = api.post("/v1/contracts", BODY, Idempotency_Key=key)
    assert again.status_code == 201, again.text
    second = again.json()["contract_id"]
    assert second != first and second == str(Contract.create_id("RE-1", "kintone", "", 1))
    retried = api.post("/v1/contracts", BODY, Idempotency_Key=key)
    assert retried.json()["contract_id"] == second and retried.headers["idempotent-replayed"] == "true"
    assert api.get(f"/v1/contracts/{first}").json()["state"] == "rejected"
    assert api.get(f"/v1/contracts/{second}").json()["state"] == "applied"
    # the second has not ended: a third application is refused and stores nothing
    before = api.event_count()
    third = api.post("/v1/contracts", BODY)
    assert third.status_code == 409 and third.json()["article"] == "Art. 2.1"
    assert "RE-1" not in third.text
    assert api.event_count() == before
