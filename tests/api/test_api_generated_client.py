"""The OpenAPI contract, as an integrator meets it (issue 19): the document passes an OpenAPI
validator, a real generator (openapi-python-client) turns it into a client, and that client ALONE
drives a lifecycle over a real server (``contracts serve``: uvicorn on 127.0.0.1, a free port,
SQLite, sandbox mode), reading every answer as a typed model, errors as a typed ``Problem``.

Figures asserted are computed by hand from the rule book and the packaged sample catalog
(kintone standard: 1,500 yen/user/month, campaign 1,200 for 3 months, initial fee 10,000, at
least 5 users; tax 10 % once per invoice, rounded down; due the last day of the next month).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from support.live_server import LiveServer, create_key, live_server, sandbox_env

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PACKAGE = "contract_lifecycle_api_client"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = sandbox_env(tmp_path_factory.mktemp("served") / "served.sqlite")
    keys = {role: create_key(env, role, f"gen-{role}") for role in ("billing", "operator", "auditor")}
    with live_server(env, keys=keys, args=("--host", "127.0.0.1")) as served:
        yield served


@pytest.fixture(scope="module")
def schema(server: LiveServer) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{server.base}/openapi.json").json()
    return document


@pytest.fixture(scope="module")
def client_package(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    out = tmp_path_factory.mktemp("generated")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # ruff formats the code
    config = out / "config.yml"  # the invoice PDF (application/pdf) is bytes to the generator as well
    config.write_text('content_type_overrides:\n  "application/pdf": "application/octet-stream"\n')
    generated = subprocess.run([str(BIN / "openapi-python-client"), "generate", "--url", f"{server.base}/openapi.json",
                                "--meta", "none", "--config", str(config), "--output-path", str(out / PACKAGE)],
                               cwd=out, env=env, capture_output=True, text=True, timeout=300)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_the_schema_passes_an_openapi_validator(schema: dict[str, Any]) -> None:
    validate(schema)


def test_errors_are_problem_json_with_the_problem_schema_and_headers_are_declared(schema: dict[str, Any]) -> None:
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert response["content"] == {"application/problem+json": {"schema": problem_ref}}, \
                        (method, path, status)
                elif path == "/metrics":  # Prometheus text, not JSON
                    assert response["content"] == {"text/plain": {"schema": {"type": "string"}}}
                elif path.endswith(".pdf"):  # the printable invoice (rule book 6.1): bytes
                    assert response["content"] == {"application/pdf": {"schema": {"type": "string",
                                                                                   "format": "binary"}}}
                elif "content" in response:  # a named model (a class in the generated client), never a bare object
                    assert "$ref" in str(response["content"]["application/json"]["schema"]), (method, path, status)
            if method == "post":
                headers = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
                assert "Idempotency-Key" in headers, (method, path)
                ok = next(r for s, r in op["responses"].items() if s.startswith("2"))
                assert {"ETag", "X-Position"} <= set(ok["headers"]), (method, path)
    approve = schema["paths"]["/v1/contracts/{contract_id}/approve"]["post"]
    assert "If-Match" in {p["name"] for p in approve["parameters"]}
    assert approve["operationId"] == "approveContract"
    assert schema["paths"]["/v1/contracts/{contract_id}"]["get"]["operationId"] == "getContract"
    assert "Location" in schema["paths"]["/v1/contracts"]["post"]["responses"]["201"]["headers"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_a_lifecycle_driven_only_by_the_generated_client(server: LiveServer, client_package: ModuleType) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    contracts = {name: importlib.import_module(f"{PACKAGE}.api.contracts.{name}") for name in (
        "apply_for_contract", "approve_contract", "get_contract", "advance_contract", "list_contract_invoices",
        "record_payment", "reject_contract", "request_change", "list_contract_events")}
    set_clock = importlib.import_module(f"{PACKAGE}.api.system.set_clock")
    billing = client_package.AuthenticatedClient(base_url=server.base, token=server.keys["billing"])
    operator = client_package.AuthenticatedClient(base_url=server.base, token=server.keys["operator"])

    clock = set_clock.sync(client=billing, body=models.ClockIn(now=datetime.fromisoformat("2026-03-02T10:00:00+09:00")))
    assert isinstance(clock, models.ClockResource) and clock.today == date(2026, 3, 2)

    body = models.ApplyIn(customer_number="GEN-1", service="kintone", grade="standard", users=10,
                          contractor=models.Contractor(name="Generated K.K.", address="1-1 Sample-cho, Tokyo"),
                          billing_cycle=models.ApplyInBillingCycleType0.MONTHLY)
    key = str(uuid.uuid4())
    applied = contracts["apply_for_contract"].sync_detailed(client=billing, body=body, idempotency_key=key)
    assert applied.status_code == 201
    assert isinstance(applied.parsed, models.ApplyResult) and applied.parsed.state == "applied"
    cid = uuid.UUID(applied.parsed.contract_id)
    assert applied.headers["Location"] == f"/v1/contracts/{cid}"
    again = contracts["apply_for_contract"].sync_detailed(client=billing, body=body, idempotency_key=key)
    assert isinstance(again.parsed, models.ApplyResult) and again.parsed.contract_id == str(cid)  # replayed

    approved = contracts["approve_contract"].sync(cid, client=billing)
    assert isinstance(approved, models.ApproveResult)
    assert approved.concluded_on == date(2026, 3, 2) and approved.first_month == "2026-04"  # Art. 8.1

    contract = contracts["get_contract"].sync(cid, client=billing)
    assert isinstance(contract, models.ContractResource)
    assert contract.state == "concluded" and contract.users == 10 and contract.grade == "standard"
    assert isinstance(contract.contractor, models.ContractorInfo) and contract.contractor.name == "Generated K.K."

    set_clock.sync(client=billing, body=models.ClockIn(now=datetime.fromisoformat("2026-04-02T10:00:00+09:00")))
    advanced = contracts["advance_contract"].sync(cid, client=operator, body=models.AdvanceIn())
    assert isinstance(advanced, models.AdvanceResult) and advanced.state == "active" and advanced.month == "2026-04"

    invoices = contracts["list_contract_invoices"].sync(cid, client=billing)
    assert isinstance(invoices, models.ContractInvoices) and len(invoices.invoices) == 1
    april = invoices.invoices[0]
    assert isinstance(april, models.Invoice)
    # campaign 1,200 x 10 users + initial fee 10,000 = 22,000; tax 10 % = 2,200 (Art. 9.1, 9.2)
    assert (april.month, april.total, april.due_on) == ("2026-04", 24_200, date(2026, 5, 31))
    assert sorted(line.amount for line in april.lines) == [2_200, 10_000, 12_000]

    paid = contracts["record_payment"].sync(cid, client=billing, body=models.PaymentIn(
        invoice_id=uuid.UUID(april.invoice_id), amount=24_200, paid_on=date(2026, 4, 2)))
    assert isinstance(paid, models.PaymentResult) and paid.outstanding == 0

    # rule book 7: a transfer with nothing open left becomes the customer's credit balance, whole
    settlement = {name: importlib.import_module(f"{PACKAGE}.api.settlement.{name}") for name in (
        "record_transfer", "get_transfer", "get_customer_account")}
    received = settlement["record_transfer"].sync_detailed(client=billing, body=models.TransferIn(
        customer_number="GEN-1", payer_name="ｼﾞｪﾈﾚｰﾃｯﾄﾞ(ｶ", bank_reference="GEN-TR-1", amount=5_000,
        value_date=date(2026, 4, 2)))
    assert received.status_code == 201 and isinstance(received.parsed, models.Transfer), received.content
    assert received.headers["Location"] == f"/v1/transfers/{received.parsed.id}"
    transfer = settlement["get_transfer"].sync(uuid.UUID(received.parsed.id), client=billing)
    assert isinstance(transfer, models.Transfer)
    assert (transfer.status, transfer.amount, transfer.credit, transfer.allocations) == ("applied", 5_000, 5_000, [])
    # rule book 10: a withheld personal field is one typed model, Redacted, wherever it may be withheld
    auditor = client_package.AuthenticatedClient(base_url=server.base, token=server.keys["auditor"])
    seen = contracts["get_contract"].sync(cid, client=auditor)
    assert isinstance(seen, models.ContractResource) and isinstance(seen.contractor, models.Redacted)
    assert (seen.contractor.redacted, seen.contractor.reason) == (True, models.RedactedReason.ROLE)
    hidden = settlement["get_transfer"].sync(uuid.UUID(received.parsed.id), client=auditor)
    assert isinstance(hidden, models.Transfer) and isinstance(hidden.payer_name, models.Redacted)
    assert isinstance(hidden.bank_reference, models.Redacted) and hidden.amount == 5_000
    assert transfer.payer_name == "ｼﾞｪﾈﾚｰﾃｯﾄﾞ(ｶ"  # billing reads the name itself, a str
    account = settlement["get_customer_account"].sync("GEN-1", client=billing)
    assert isinstance(account, models.CustomerAccountResource)
    assert (account.credit_balance, account.outstanding, account.contracts) == (5_000, 0, [str(cid)])

    month = importlib.import_module(f"{PACKAGE}.api.invoices.list_invoices").sync(
        client=billing, month="2026-04", limit=1)
    assert isinstance(month, models.InvoicePage) and month.object_ == "list"
    assert [i.id for i in month.data] == [april.id] and month.has_more is False and month.next_cursor is None
    catalog = importlib.import_module(f"{PACKAGE}.api.system.get_catalog").sync(client=billing)
    assert isinstance(catalog, models.CatalogResource) and catalog.tax_rate == "0.10"

    events = contracts["list_contract_events"].sync(cid, client=billing)
    assert isinstance(events, models.ContractEvents)
    assert [e.type_ for e in events.data][-1] == "PaymentReceived"
    assert all(isinstance(e.actor, models.Actor) for e in events.data)

    # a command the state does not allow: 409, a typed Problem naming the article (Art. 2.4)
    refused = contracts["reject_contract"].sync_detailed(
        cid, client=billing, body=models.RejectIn(article=models.RejectInArticle("Art. 2.4.1")))
    assert refused.status_code == 409
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.article == "Art. 2.4" and refused.parsed.type_ == "urn:contracts:problem:rule-violation"
    # a value the rules refuse: 422 naming the field
    unknown = contracts["request_change"].sync_detailed(cid, client=billing, body=models.ChangeIn(grade="platinum"))
    assert unknown.status_code == 422
    assert isinstance(unknown.parsed, models.Problem) and unknown.parsed.field == "grade"
    # a stale If-Match: 412
    stale = contracts["request_change"].sync_detailed(cid, client=billing, body=models.ChangeIn(users=12),
                                                      if_match='"1"')
    assert stale.status_code == 412 and isinstance(stale.parsed, models.Problem)
