"""Bad input, targeted: huge bodies, wrong types, unknown fields, negative or absurd amounts,
dates out of range, unicode (emoji, right-to-left, combining marks, NUL, lone surrogates) in
names, odd headers. Never a 5xx; every refusal is problem+json and stores nothing; accepted
unicode comes back exactly as sent.

The app runs in this process (``InProcessApi``) on a scratch PostgreSQL database, with one
concluded contract that has an April invoice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from reliability_kit import CONTRACTOR, InProcessApi, apply_body, assert_problem, record_figures

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

MB = 1024 * 1024
REFUSED = {400, 413, 422}


@pytest.fixture(scope="module")
def env(scratch_url: str) -> Iterator[dict[str, Any]]:
    api = InProcessApi.start(scratch_url)
    c, h = api.client, api.headers
    cid = c.post("/v1/contracts", json=apply_body("BAD-1"), headers=h()).json()["contract_id"]
    assert c.post(f"/v1/contracts/{cid}/approve", headers=h()).status_code == 200
    assert c.put("/v1/clock", json={"now": "2026-04-01T10:00:00+09:00"}, headers=h()).status_code == 200
    assert c.post(f"/v1/contracts/{cid}/advance", headers=h("operator")).status_code == 200
    iid = c.get(f"/v1/contracts/{cid}/invoices", headers=h()).json()["invoices"][0]["invoice_id"]
    outage = c.post("/v1/outages", headers=h(), json={"service": "kintone", "started_at": "2026-03-10T00:00:00+09:00",
                                                       "ended_at": "2026-03-12T00:00:00+09:00",
                                                       "cause": "provider_network"}).json()["outage_id"]
    state = {"api": api, "cid": cid, "iid": iid, "outage": outage, "cases": 0}
    yield state
    record_figures("bad_input_targeted", {"cases": state["cases"]})
    api.close()


def _raw(text: str) -> bytes:
    return text.encode("utf-8")


PAY = "/v1/contracts/{cid}/payments"
CONTRACTOR_PATH = "/v1/contracts/{cid}/contractor"
CHANGES = "/v1/contracts/{cid}/changes"


def _pay(**overrides: Any) -> dict[str, Any]:
    return {"invoice_id": "{iid}", "amount": 1, "paid_on": "2026-04-01", **overrides}


# (id, method, path, json body | raw bytes | None, extra headers, query params, expected statuses)
CASES: list[tuple[str, str, str, Any, dict[str, Any], dict[str, Any], set[int]]] = [
    # -- huge bodies (limits: 64-500 characters per field, 10,000 for SLA evidence)
    ("huge-field-2MB", "POST", "/v1/contracts", apply_body("H-1", reference="a" * (2 * MB)), {}, {}, REFUSED),
    ("huge-array-2MB", "POST", "/v1/contracts", _raw("[" + "1," * MB + "1]"), {}, {}, REFUSED),
    ("huge-object-100k-keys", "POST", CONTRACTOR_PATH, {"contractor": {f"k{i}": "v" for i in range(100_000)}}, {},
     {}, REFUSED),
    ("huge-evidence-1.5MB", "POST", "/v1/contracts/{cid}/sla-claims",
     {"outage_id": "{outage}", "proof_of_payment": True, "proof_of_breach": True, "evidence": "e" * (3 * MB // 2)},
     {}, {}, REFUSED),
    ("deep-nesting-100k", "POST", "/v1/contracts", _raw("[" * 100_000 + "]" * 100_000), {}, {}, REFUSED),
    # -- wrong types
    ("users-string", "POST", "/v1/contracts", apply_body("T-1", users="10"), {}, {}, {422}),
    ("users-float", "POST", "/v1/contracts", apply_body("T-1", users=10.5), {}, {}, {422}),
    ("users-bool", "POST", "/v1/contracts", apply_body("T-1", users=True), {}, {}, {422}),
    ("users-null", "POST", "/v1/contracts", apply_body("T-1", users=None), {}, {}, {422}),
    ("users-list", "POST", "/v1/contracts", apply_body("T-1", users=[10]), {}, {}, {422}),
    ("contractor-string", "POST", "/v1/contracts", apply_body("T-1", contractor="Example K.K."), {}, {}, {422}),
    ("amount-string", "POST", PAY, _pay(amount="1"), {}, {}, {422}),
    ("amount-float", "POST", PAY, _pay(amount=1.5), {}, {}, {422}),
    ("amount-bool", "POST", PAY, _pay(amount=True), {}, {}, {422}),
    ("paid-on-number", "POST", PAY, _pay(paid_on=20260401), {}, {}, {422}),
    ("invoice-id-not-uuid", "POST", PAY, _pay(invoice_id="invoice-1"), {}, {}, {422}),
    ("body-string", "POST", PAY, "pay me", {}, {}, {422}),
    ("body-number", "POST", PAY, 42, {}, {}, {422}),
    ("body-null", "POST", PAY, None, {}, {}, {422}),
    ("body-malformed", "POST", PAY, _raw('{"invoice_id": '), {}, {}, {400, 422}),
    ("body-empty", "POST", PAY, b"", {}, {}, {422}),
    ("body-text-plain", "POST", PAY, _raw(json.dumps(_pay())), {"Content-Type": "text/plain"}, {}, {415, 422}),
    ("body-not-utf8", "POST", PAY, b'{"invoice_id": "\xff\xfe"}', {}, {}, {400, 422}),
    # -- unknown fields
    ("unknown-top", "POST", "/v1/contracts", apply_body("U-1", discount=100), {}, {}, {422}),
    ("unknown-nested", "POST", "/v1/contracts", apply_body("U-1", contractor={**CONTRACTOR, "ssn": "x"}), {}, {},
     {422}),
    ("unknown-payment", "POST", PAY, _pay(currency="USD"), {}, {}, {422}),
    ("unknown-change", "POST", CHANGES, {"users": 12, "price": 0}, {}, {}, {422}),
    ("unknown-clock", "PUT", "/v1/clock", {"now": "2026-04-01T10:00:00+09:00", "tz": "UTC"}, {}, {}, {422}),
    # -- negative and absurd amounts and counts
    ("amount-negative", "POST", PAY, _pay(amount=-1), {}, {}, {422}),
    ("amount-zero", "POST", PAY, _pay(amount=0), {}, {}, {422}),
    ("amount-above-max", "POST", PAY, _pay(amount=10**12 + 1), {}, {}, {422}),
    ("amount-10e30", "POST", PAY, _pay(amount=10**30), {}, {}, {422}),
    ("amount-NaN", "POST", PAY, _raw('{"invoice_id": "{iid}", "amount": NaN, "paid_on": "2026-04-01"}'), {}, {},
     {422}),
    ("amount-Infinity", "POST", PAY, _raw('{"invoice_id": "{iid}", "amount": -Infinity, "paid_on": "2026-04-01"}'),
     {}, {}, {422}),
    ("amount-overpayment", "POST", PAY, _pay(amount=10**12), {}, {}, {409, 422}),
    ("users-negative", "POST", CHANGES, {"users": -5}, {}, {}, {422}),
    ("users-2^63", "POST", CHANGES, {"users": 2**63}, {}, {}, {422}),
    ("decision-amount-negative", "POST", "/v1/sla-claims/{outage}/decision", {"remedy": "refund", "amount": -1},
     {"role": "operator"}, {}, {422}),
    # -- dates out of range
    ("paid-on-0001", "POST", PAY, _pay(paid_on="0001-01-01"), {}, {}, {422}),
    ("paid-on-9999", "POST", PAY, _pay(paid_on="9999-12-31"), {}, {}, {422}),
    ("paid-on-feb-30", "POST", PAY, _pay(paid_on="2026-02-30"), {}, {}, {422}),
    ("paid-on-year-0", "POST", PAY, _pay(paid_on="0000-01-01"), {}, {}, {422}),
    ("paid-on-unpadded", "POST", PAY, _pay(paid_on="2026-4-1"), {}, {}, {422}),
    ("month-9999-12", "POST", CHANGES, {"users": 12, "requested_month": "9999-12"}, {}, {}, {422}),
    ("month-9998-12", "POST", "/v1/contracts/{cid}/termination-notice", {"requested_month": "9998-12"}, {}, {},
     {200, 409, 422}),
    ("month-0000-00", "POST", CHANGES, {"users": 12, "requested_month": "0000-00"}, {}, {}, {422}),
    ("advance-9999-12", "POST", "/v1/contracts/{cid}/advance", {"month": "9999-12"}, {"role": "operator"}, {},
     {422}),
    ("outage-year-1", "POST", "/v1/outages", {"service": "kintone", "started_at": "0001-01-01T00:00:00+14:00",
                                               "ended_at": "0001-01-03T00:00:00Z", "cause": "provider_network"},
     {}, {}, {422}),
    ("outage-year-9999", "POST", "/v1/outages", {"service": "kintone", "started_at": "9999-12-31T20:00:00-14:00",
                                                  "ended_at": "9999-12-31T23:00:00-14:00",
                                                  "cause": "provider_network"}, {}, {}, {422}),
    ("outage-ends-first", "POST", "/v1/outages", {"service": "kintone", "started_at": "2026-03-12T00:00:00Z",
                                                   "ended_at": "2026-03-10T00:00:00Z", "cause": "provider_network"},
     {}, {}, {422}),
    ("clock-9999", "PUT", "/v1/clock", {"now": "9999-12-31T23:59:59Z"}, {}, {}, {422}),
    ("clock-9999-minus-14h", "PUT", "/v1/clock", {"now": "9999-12-31T23:59:59-14:00"}, {}, {}, {422}),
    ("clock-backwards", "PUT", "/v1/clock", {"now": "2000-01-01T00:00:00Z"}, {}, {}, {409, 422}),
    ("as-of-year-1", "GET", "/v1/contracts/{cid}/invoices", None, {}, {"as_of": "0001-01-01T00:00:00+14:00"}, {422}),
    ("as-of-year-9999", "GET", "/v1/contracts/{cid}/invoices", None, {}, {"as_of": "9999-12-31T23:59:59Z"}, {422}),
    ("as-of-9999-contract", "GET", "/v1/contracts/{cid}", None, {}, {"as_of": "9999-12-31T23:59:59-14:00"}, {422}),
    ("as-of-no-offset", "GET", "/v1/contracts/{cid}", None, {}, {"as_of": "2026-04-01T10:00:00"}, {422}),
    ("deadlines-9999", "GET", "/v1/deadlines", None, {}, {"until": "9999-12-31"}, {200}),
    ("deadlines-0001", "GET", "/v1/deadlines", None, {}, {"until": "0001-01-01"}, {200}),
    ("invoices-month-0001", "GET", "/v1/invoices", None, {}, {"month": "0001-01"}, {200}),
    ("invoices-month-9999", "GET", "/v1/invoices", None, {}, {"month": "9999-12"}, {422}),
    ("invoices-month-13", "GET", "/v1/invoices", None, {}, {"month": "2026-13"}, {422}),
    ("events-after-negative", "GET", "/v1/events", None, {}, {"after": -1}, {422}),
    ("events-after-2^63", "GET", "/v1/events", None, {}, {"after": 2**63}, {422}),
    ("events-limit-0", "GET", "/v1/events", None, {}, {"limit": 0}, {422}),
    ("events-limit-10^6", "GET", "/v1/events", None, {}, {"limit": 10**6}, {422}),
    ("contract-id-not-uuid", "GET", "/v1/contracts/not-a-uuid", None, {}, {}, {404, 422}),
    # -- unicode
    ("name-lone-surrogate", "POST", CONTRACTOR_PATH, _raw('{"contractor": {"name": "A\\ud800B"}}'), {}, {}, {422}),
    ("name-501-emoji", "POST", CONTRACTOR_PATH, {"contractor": {"name": "\U0001f3e2" * 501}}, {}, {}, {422}),
    ("customer-lone-surrogate", "POST", "/v1/contracts", _raw(json.dumps(apply_body("X"))[:-1].replace(
        '"customer_number": "X"', '"customer_number": "\\udfff"') + "}"), {}, {}, {422}),
    ("service-unicode", "POST", "/v1/contracts", apply_body("S-1", service="キントーン"), {}, {}, {422}),
    ("idempotency-key-unicode", "POST", CONTRACTOR_PATH, {"contractor": {"name": "x"}},
     {"Idempotency-Key": "ключ".encode()}, {}, {422}),
    ("idempotency-key-256", "POST", CONTRACTOR_PATH, {"contractor": {"name": "x"}}, {"Idempotency-Key": "k" * 256},
     {}, {422}),
    ("if-match-garbage", "POST", CONTRACTOR_PATH, {"contractor": {"name": "x"}}, {"If-Match": '"1e3"'}, {}, {422}),
    ("if-match-huge", "POST", CONTRACTOR_PATH, {"contractor": {"name": "x"}}, {"If-Match": '"' + "9" * 40 + '"'}, {},
     {412, 422}),
    ("api-key-unicode", "GET", "/v1/contracts/{cid}", None, {"role": None, "X-API-Key": "ключ".encode()}, {}, {401}),
    ("api-key-huge", "GET", "/v1/contracts/{cid}", None, {"role": None, "X-API-Key": "k" * 10_000}, {}, {401, 431}),
    ("bearer-empty", "GET", "/v1/contracts/{cid}", None, {"role": None, "Authorization": "Bearer "}, {}, {401}),
]

ACCEPTED_NAMES = [
    "株式会社サンプル 🏢🚀",  # CJK and emoji (4-byte UTF-8)
    "\u202eشركة المثال\u202c",  # Arabic with a right-to-left override
    "דוגמה בע\"מ",  # Hebrew with a quote
    "e\u0301\u0301\u0301 Zalgo\u0336\u0336",  # combining marks
    "NUL\u0000inside",  # NUL: stored encrypted, so PostgreSQL's text type never sees it
    "\U0001f3e2" * 500,  # the maximum length, in 4-byte characters
]


def _fill(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.replace("{cid}", env["cid"]).replace("{iid}", env["iid"]).replace("{outage}", env["outage"])
    if isinstance(value, bytes):
        return _fill(value.decode("utf-8", "surrogateescape"), env).encode("utf-8", "surrogateescape")
    if isinstance(value, dict):
        return {k: _fill(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, env) for v in value]
    return value


@pytest.mark.parametrize(("case", "method", "path", "body", "headers", "params", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input_is_refused_as_a_problem_and_stores_nothing(env: dict[str, Any], case: str, method: str,
                                                              path: str, body: Any, headers: dict[str, Any],
                                                              params: dict[str, Any], expected: set[int]) -> None:
    api: InProcessApi = env["api"]
    extra = dict(headers)
    role = extra.pop("role", "billing")
    sent_headers: dict[str, Any] = api.headers(role)
    sent_headers.update(extra)
    body = _fill(body, env)
    kwargs: dict[str, Any] = {"params": params, "headers": sent_headers}
    if isinstance(body, bytes):
        kwargs["content"] = body
        sent_headers.setdefault("Content-Type", "application/json")
    elif body is not None or method in ("POST", "PUT"):
        kwargs["content"] = json.dumps(body, ensure_ascii=False).encode()
        sent_headers.setdefault("Content-Type", "application/json")
    before = api.events()
    r = api.client.request(method, _fill(path, env), **kwargs)
    env["cases"] += 1
    assert r.status_code < 500, f"{case}: {r.status_code} {r.text[:300]}"
    assert r.status_code in expected, f"{case}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert_problem(r)
        assert api.events() == before, f"{case}: a refused request stored events"
        text = r.text
        assert "a" * 100 not in text and "e" * 100 not in text, "submitted values are echoed back"


@pytest.mark.parametrize("name", ACCEPTED_NAMES, ids=["cjk-emoji", "arabic-rtl", "hebrew", "combining", "nul",
                                                      "500-emoji"])
def test_unicode_names_are_stored_and_read_back_exactly(env: dict[str, Any], name: str) -> None:
    api: InProcessApi = env["api"]
    cid = env["cid"]
    before = api.events()
    r = api.client.post(f"/v1/contracts/{cid}/contractor", json={"contractor": {"name": name}}, headers=api.headers())
    env["cases"] += 1
    assert r.status_code == 200, r.text
    assert api.events() == before + 1
    events = api.client.get(f"/v1/contracts/{cid}/events", headers=api.headers()).json()["events"]
    assert events[-1]["type"] == "ContractorInfoChanged"
    assert events[-1]["data"]["contractor"]["name"] == name
    audited = api.client.get(f"/v1/contracts/{cid}/events", headers=api.headers("auditor")).json()["events"]
    assert name not in json.dumps(audited[-1], ensure_ascii=False)  # auditors see no personal data
    assert audited[-1]["data"]["contractor"] != {"name": name}
