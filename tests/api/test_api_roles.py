"""Auth over every operation of the app: 401 without (or with a bad) key, 403 for each role the
operation does not allow, and never 401/403 for the roles it does allow. The operations are
read from the app's OpenAPI document, so a new endpoint cannot be missed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from api_harness import Harness

from api.app import create_app
from api.auth import ROLES

PUBLIC = {("get", "/healthz"), ("get", "/readyz")}


def _operations() -> list[tuple[str, str, tuple[str, ...]]]:
    app = create_app(None, None, None, None, mode="sandbox")  # type: ignore[arg-type]  # routes only
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            found.append((method, path, tuple(operation.get("x-roles", ()))))
    return sorted(found)


OPERATIONS = _operations()
PROTECTED = [op for op in OPERATIONS if (op[0], op[1]) not in PUBLIC]


def _call(api: Harness, method: str, path: str, headers: dict[str, str]) -> Any:
    url = path.replace("{contract_id}", str(uuid.uuid4())).replace("{claim_id}", str(uuid.uuid4()))
    url = url.replace("{transfer_id}", str(uuid.uuid4())).replace("{customer_number}", "CUST-X")
    return api.client.request(method.upper(), url, headers=headers, json={} if method in ("post", "put") else None)


def test_every_operation_is_listed_and_declares_roles() -> None:
    assert len(OPERATIONS) >= 24
    for method, path, allowed in PROTECTED:
        assert allowed, f"{method.upper()} {path} declares no roles (it would be refused to everyone)"
        assert set(allowed) <= set(ROLES)
    paths = {(m, p) for m, p, _ in OPERATIONS}
    for expected in [("post", "/v1/contracts"), ("post", "/v1/contracts/{contract_id}/approve"),
                     ("post", "/v1/contracts/{contract_id}/reject"), ("post", "/v1/contracts/{contract_id}/changes"),
                     ("post", "/v1/contracts/{contract_id}/termination-notice"),
                     ("post", "/v1/contracts/{contract_id}/terminate"),
                     ("post", "/v1/contracts/{contract_id}/payments"), ("post", "/v1/outages"),
                     ("post", "/v1/contracts/{contract_id}/sla-claims"), ("post", "/v1/sla-claims/{claim_id}/decision"),
                     ("get", "/v1/contracts/{contract_id}"), ("get", "/v1/contracts/{contract_id}/events"),
                     ("get", "/v1/contracts/{contract_id}/invoices"), ("get", "/v1/contracts/{contract_id}/sla-claims"),
                     ("get", "/v1/invoices"), ("get", "/v1/invoices/{invoice_id}"),
                     ("get", "/v1/invoices/{invoice_id}.pdf"), ("get", "/v1/deadlines"), ("get", "/v1/events"),
                     ("get", "/healthz"),
                     ("get", "/readyz"), ("put", "/v1/clock")]:
        assert expected in paths


def test_operator_only_operations() -> None:
    operator_only = {(m, p) for m, p, allowed in PROTECTED if allowed == ("operator",)}
    assert operator_only == {
        ("post", "/v1/sla-claims/{claim_id}/decision"),
        ("post", "/v1/contracts/{contract_id}/terminate"),
        ("post", "/v1/contracts/{contract_id}/advance"),
        ("get", "/v1/contracts/{contract_id}/disclosure"),
        ("post", "/v1/service-discontinuations"), ("post", "/v1/terms-changes"),
        ("post", "/v1/webhook-endpoints"), ("get", "/v1/webhook-endpoints"),
        ("get", "/v1/webhook-endpoints/{endpoint_id}"), ("patch", "/v1/webhook-endpoints/{endpoint_id}"),
        ("delete", "/v1/webhook-endpoints/{endpoint_id}"), ("post", "/v1/webhook-endpoints/{endpoint_id}/disable"),
        ("post", "/v1/webhook-endpoints/{endpoint_id}/enable"),
        ("post", "/v1/webhook-endpoints/{endpoint_id}/roll-secret"),
        ("get", "/v1/webhook-endpoints/{endpoint_id}/deliveries"),
        ("get", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{notification_id}"),
        ("post", "/v1/webhook-endpoints/{endpoint_id}/redeliver"),
        ("post", "/v1/contracts/{contract_id}/privacy-requests"),
        # rule book 7: operator discretion and the operator's side of settlement
        ("get", "/v1/transfers"), ("post", "/v1/transfers/{transfer_id}/apply"),
        ("post", "/v1/transfers/{transfer_id}/reverse"), ("post", "/v1/customers/{customer_number}/credit/refund"),
        ("post", "/v1/contracts/{contract_id}/write-offs"),
        ("post", "/v1/contracts/{contract_id}/suspension/stop-date"),
        ("post", "/v1/contracts/{contract_id}/suspension/lift"),
        ("post", "/v1/invoices/{invoice_id}/void"),  # rule book 6.1: corrections are the operator's
        ("post", "/v1/invoices/{invoice_id}/corrections"),
        ("post", "/v1/invoices/{invoice_id}/credit-notes"),
        ("post", "/v1/invoices/{invoice_id}/interest-waiver"),  # Art. 9.4: waived by an operator
    }
    auditor_may = {(m, p) for m, p, allowed in PROTECTED if "auditor" in allowed}
    assert all(m == "get" for m, _ in auditor_may), "auditors only read"


@pytest.mark.parametrize(("method", "path", "allowed"), PROTECTED, ids=[f"{m.upper()} {p}" for m, p, _ in PROTECTED])
def test_auth_and_roles(api: Harness, method: str, path: str, allowed: tuple[str, ...]) -> None:
    r = _call(api, method, path, {})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert _call(api, method, path, {"X-API-Key": "ck_not-a-key"}).status_code == 401
    assert _call(api, method, path, {"Authorization": "Bearer ck_not-a-key"}).status_code == 401
    for role in ROLES:
        r = _call(api, method, path, api.headers(role))
        if role in allowed:
            assert r.status_code not in (401, 403), f"{role}: {r.text}"
        else:
            assert r.status_code == 403, f"{role}: {r.text}"
            assert r.json()["type"] == "urn:contracts:problem:forbidden"


def test_public_endpoints_need_no_key(api: Harness) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json() == {"status": "ready"}
    assert api.client.get("/openapi.json").status_code == 200
    assert "swagger" in api.client.get("/docs").text.lower()


def test_bearer_key_works_and_revoked_key_does_not(api: Harness) -> None:
    key = api.keys["auditor"]
    assert api.client.get("/v1/clock", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    name = next(k.name for k in api.store.list_keys() if k.role == "auditor")
    assert api.store.revoke_key(name, api.clock.now())
    assert api.client.get("/v1/clock", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_keys_are_stored_hashed(api: Harness) -> None:
    stored = {k.key_hash for k in api.store.list_keys()}
    assert not set(api.keys.values()) & stored
    assert all(len(h) == 64 for h in stored)


def test_unknown_path_needs_a_key_then_is_404_problem(api: Harness) -> None:
    assert api.client.get("/v1/nothing").status_code == 401
    r = api.get("/v1/nothing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
