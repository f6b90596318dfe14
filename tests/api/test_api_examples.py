"""OpenAPI examples (issue 19): the main request and response models carry examples, the examples
are valid instances of their own models, and their figures are the rule book's, worked by hand:

kintone standard x 10 users, monthly (sample catalog: 1,500 yen/user, campaign 1,200 for 3 months,
initial fee 10,000): the April invoice is 12,000 + 10,000 = 22,000 taxable, tax 10 % rounded down
once = 2,200, total 24,200 (rule book 1, 6; Art. 9.1, 9.2), issued 2026-04-01, due 2026-05-31 (the
last day of the next month). Instants are UTC ``Z`` (rule book 1), ids dashed UUIDs, money integer
yen, the issuer's registration number ``T`` + 13 digits with the corporate-number check digit
(Consumption Tax Act Art. 57-4(1) item 1).
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from api_harness import Harness
from pydantic import BaseModel

from api import resources as r
from api import schemas as s

MODELS: list[type[BaseModel]] = [r.ContractResource, r.ContractList, r.Invoice, r.IssuedInvoice, r.InvoicePage,
                                 r.ContractInvoices, r.Transfer, r.Event, r.ContractEvents, r.Problem, r.Redacted,
                                 s.ApplyIn, s.PaymentIn, s.TransferIn]
MONEY = {"amount", "total", "tax", "taxable", "paid", "outstanding", "refunded", "late_interest", "unit_price",
         "monthly_price", "annual_price", "initial_fee", "credit"}
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _examples(model: type[BaseModel]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = model.model_json_schema().get("examples", [])
    return found


def _walk(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _walk(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in _walk(v, key)]
    return [(key, value)]


def _check_digit_ok(number: str) -> bool:
    """Corporate number: check = 9 - (sum of P_n x Q_n mod 9), P_n the n-th of the other 12 digits
    counted from the right, Q_n 1 for odd n and 2 for even n."""
    digits = number[2:]
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(digits), start=1))
    return int(number[1]) == 9 - total % 9


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_rule_book_1_every_example_is_a_valid_instance_in_the_rule_books_formats(model: type[BaseModel]) -> None:
    examples = _examples(model)
    assert examples, f"{model.__name__} has no example"
    for example in examples:
        model.model_validate(example)
        for key, value in _walk(example):
            if key in MONEY and value is not None:
                assert type(value) is int, (model.__name__, key, value)  # integer yen, never a float
            if (key == "at" or key.endswith("_at")) and value is not None:
                assert value.endswith("Z") and datetime.fromisoformat(value).utcoffset().total_seconds() == 0, \
                    (model.__name__, key, value)
            if (key == "id" or key.endswith("_id")) and isinstance(value, str):
                assert UUID_TEXT.match(value) and str(uuid.UUID(value)) == value, (model.__name__, key, value)


def test_art_57_4_the_invoice_example_adds_up_as_the_rule_book_computes() -> None:
    (issued,) = _examples(r.IssuedInvoice)
    lines = issued["lines"]
    for line in lines:
        if line["unit_price"] is not None:
            assert line["quantity"] * line["unit_price"] == line["amount"]  # rule book 6
    taxable = sum(line["amount"] for line in lines if line["kind"] != "tax")
    tax = int((Decimal(taxable) * Decimal("0.10")).quantize(Decimal(1), rounding=ROUND_DOWN))
    assert (taxable, tax) == (22_000, 2_200) and issued["rate_totals"] == [
        {"rate": "0.10", "rate_kind": "standard", "taxable": 22_000, "tax": 2_200}]
    assert issued["tax"] == tax and issued["total"] == taxable + tax == 24_200
    assert (issued["issued_on"], issued["due_on"]) == ("2026-04-01", "2026-05-31")  # due: last day of May
    number = issued["issuer"]["registration_number"]
    assert re.fullmatch(r"T\d{13}", number) and _check_digit_ok(number)  # item 1
    (transfer,) = _examples(r.Transfer)
    assert transfer["amount"] == sum(a["amount"] for a in transfer["allocations"]) == issued["total"]
    (payment,) = _examples(s.PaymentIn)
    assert payment["amount"] == issued["total"] and payment["invoice_id"] == issued["invoice_id"]
    assert date.fromisoformat(payment["paid_on"]) <= date.fromisoformat(issued["due_on"])


def test_the_examples_are_in_the_openapi_document(api: Harness) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    for model in MODELS:
        assert schemas[model.__name__]["examples"] == _examples(model), model.__name__
