"""Issued invoices over HTTP (rule book 6.1, Consumption Tax Act Art. 57-4; rule book 13 search).

Figures by hand from the sample catalog: kintone standard, 10 users, first month 2026-04 (campaign
1,200 x 10 = 12,000 + initial fee 10,000 = 22,000 at 10% -> tax 2,200, total 24,200); kintone light,
5 users: 800 x 5 = 4,000 -> 4,400; garoon standard, 10 users: 1,000 x 10 = 10,000 -> 11,000.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from api_harness import CONTRACTOR, Harness, jst
from fpdf import FPDF
from pypdf import PdfReader

from domain.calendar import Month
from domain.contract import BillingCycle
from infrastructure.invoice_pdf import DEFAULT_FONT

ISSUER_NUMBER = "T7123456789012"  # tests/conftest.py: the test operator


def _april_invoice(api: Harness, customer: str = "C-INV-1", **kwargs: Any) -> tuple[str, dict[str, Any]]:
    cid = api.concluded(customer, **kwargs)
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)
    (invoice,) = api.invoices(cid)
    return cid, invoice


def test_art_57_4_issued_invoice_as_data(any_api: Harness) -> None:
    api = any_api
    cid, listed = _april_invoice(api)
    # the existing contract invoice read keeps its fields and gains the qualified-invoice ones
    assert (listed["period"], listed["total"], listed["outstanding"], listed["due_on"]) == (
        "2026-04", 24200, 24200, "2026-05-31")
    assert listed["number"] == "INV-2026-000001" and listed["document_type"] == "invoice"
    assert "recipient" not in listed  # read tables never hold the name
    r = api.get(f"/v1/invoices/{listed['invoice_id']}")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["issuer"]["registration_number"] == ISSUER_NUMBER  # Art. 57-4(1) item 1
    assert doc["issued_on"] == "2026-04-01" and doc["period"] == "2026-04"  # item 2
    assert [(x["kind"], x["quantity"], x["unit_price"], x["amount"], x["tax_rate"]) for x in doc["lines"]] == [
        ("campaign_fee", 10, 1200, 12000, "0.10"), ("initial_fee", 1, 10000, 10000, "0.10"),
        ("tax", None, None, 2200, None)]  # item 3; tax lines have no unit price (rule book 6)
    assert doc["rate_totals"] == [{"rate": "0.10", "rate_kind": "standard", "taxable": 22000, "tax": 2200}]  # 4, 5
    assert doc["recipient"] == CONTRACTOR["name"]  # item 6
    assert doc["tax"] == 2200 and doc["total"] == 24200 and len(doc["document_hash"]) == 64
    auditor = api.get(f"/v1/invoices/{listed['invoice_id']}", role="auditor").json()
    assert auditor["recipient"] == {"object": "redacted", "redacted": True, "reason": "role"}
    assert auditor["total"] == 24200
    assert api.get(f"/v1/invoices/{cid}").status_code == 404  # a contract id is not an invoice id
    month = api.get("/v1/invoices", params={"month": "2026-04"}).json()
    assert [i["number"] for i in month["invoices"]] == ["INV-2026-000001"]  # the month read keeps its shape


@pytest.mark.skipif(not DEFAULT_FONT.is_file(), reason="fonts-ipaexfont-gothic not installed (./dev installs it)")
def test_art_57_4_printable_pdf_shows_every_required_item(api: Harness, tmp_path: Path) -> None:
    _, listed = _april_invoice(api)
    r = api.get(f"/v1/invoices/{listed['invoice_id']}.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
    for expected in ("請求書（適格請求書）", "テスト運営株式会社", f"登録番号: {ISSUER_NUMBER}", "INV-2026-000001",
                     "取引期間: 2026-04", f"{CONTRACTOR['name']} 御中", "10%対象（標準税率）: 22,000円",
                     "消費税: 2,200円", "ご請求金額（税込）: 24,200円", "お支払期限: 2026-05-31"):
        assert expected in text, expected
    again = api.get(f"/v1/invoices/{listed['invoice_id']}.pdf")
    assert again.content == r.content  # deterministic: the same document every time
    auditor = api.get(f"/v1/invoices/{listed['invoice_id']}.pdf", role="auditor")
    assert CONTRACTOR["name"] not in "".join(p.extract_text() for p in PdfReader(io.BytesIO(auditor.content)).pages)
    if shutil.which("pdftoppm"):  # a page as a person sees it (kept next to the test's files)
        (tmp_path / "invoice.pdf").write_bytes(r.content)
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(tmp_path / "invoice.pdf"),
                        str(tmp_path / "page")], check=True, timeout=60)
        assert (tmp_path / "page-1.png").stat().st_size > 5_000


@pytest.mark.skipif(not DEFAULT_FONT.is_file(), reason="fonts-ipaexfont-gothic not installed (./dev installs it)")
def test_art_57_4_3_credit_note_pdf_shows_the_return_date_and_the_original_supply_period(api: Harness) -> None:
    """Art. 57-4(3) item 2: the date of the return AND the date of the supply it returns (April 2026,
    the original's period), not only the original invoice's number and issue date. A 1,000 discount
    on 2026-05-12: 1,000 + 100 = 1,100."""
    _, listed = _april_invoice(api)
    api.set_clock(jst(2026, 5, 12, 9))
    note = api.post(f"/v1/invoices/{listed['invoice_id']}/credit-notes", {"amount": 1000, "reason": "discount"},
                    role="operator")
    assert note.status_code == 201, note.text
    r = api.get(f"/v1/invoices/{note.json()['invoice_id']}.pdf")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
    for expected in ("適格返還請求書", f"登録番号: {ISSUER_NUMBER}", "返還日: 2026-05-12",
                     "元の取引期間: 2026-04", "元の請求書: INV-2026-000001 (2026-04-01)",
                     "10%対象（標準税率）: 1,000円", "消費税: 100円", "ご返還金額（税込）: 1,100円"):
        assert expected in text, expected


def test_art_57_4_3_credit_note_names_the_rate_on_an_invoice_of_two_rates_over_http(any_api: Harness) -> None:
    """April corrected to 10,000 at 10% (1,000 tax) and 2,000 at 8% (160 tax) = 13,160. Crediting 500 without
    a rate is 422 naming tax_rate; at 8%: 500 + 40 = 540, reduced-rate marked; 13,160 - 540 = 12,620 owed."""
    api = any_api
    _, listed = _april_invoice(api)
    api.set_clock(jst(2026, 4, 2, 9))
    fixed = api.post(f"/v1/invoices/{listed['invoice_id']}/corrections", {"reason": "wrong items", "lines": [
        {"kind": "base_fee", "description": "kintone standard 2026-04", "quantity": 10, "unit_price": 1000,
         "tax_rate": "0.10"},
        {"description": "飲料", "quantity": 10, "unit_price": 200, "tax_rate": "0.08"}]}, role="operator")
    assert (fixed.status_code, fixed.json()["total"]) == (201, 13160), fixed.text
    fid = fixed.json()["invoice_id"]
    unnamed = api.post(f"/v1/invoices/{fid}/credit-notes", {"amount": 500, "reason": "goodwill"}, role="operator")
    assert unnamed.status_code == 422 and "tax_rate" in unnamed.text, unnamed.text
    note = api.post(f"/v1/invoices/{fid}/credit-notes", {"amount": 500, "reason": "goodwill", "tax_rate": "0.08"},
                    role="operator")
    assert (note.status_code, note.json()["total"]) == (201, 540), note.text
    doc = api.get(f"/v1/invoices/{note.json()['invoice_id']}").json()
    assert doc["rate_totals"] == [{"rate": "0.08", "rate_kind": "reduced", "taxable": 500, "tax": 40}]
    assert doc["lines"][0]["reduced_rate"] is True
    assert api.get(f"/v1/invoices/{fid}").json()["outstanding"] == 12620


def _text_runs(content: bytes) -> list[tuple[str, float]]:
    """(text, where it ends in pt from the left edge) of each text run of the first page, measured with
    the document's own font."""
    measure = FPDF(unit="pt")
    measure.add_font("jp", "", str(DEFAULT_FONT))
    runs: list[tuple[str, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], _font: Any, size: float) -> None:
        if text.strip():
            measure.set_font("jp", size=size)
            runs.append((text, tm[4] * cm[0] + cm[4] + measure.get_string_width(text.rstrip("\n"))))
    PdfReader(io.BytesIO(content)).pages[0].extract_text(visitor_text=visit)
    return runs


@pytest.mark.skipif(not DEFAULT_FONT.is_file(), reason="fonts-ipaexfont-gothic not installed (./dev installs it)")
def test_art_57_4_long_descriptions_and_reasons_wrap_inside_the_page(api: Harness) -> None:
    """Art. 57-4(1) item 3 (what was supplied) must be readable: a corrected invoice's description may
    have 200 characters and its reason 500; both wrap inside the page, every word printed, and the
    amounts are not printed over (5 x 800 = 4,000 + 400 = 4,400)."""
    _, listed = _april_invoice(api, grade="light", users=5)
    words = [f"item{n:02d}" for n in range(1, 34)]
    description = " ".join(words)[:200]
    reason = ("訂正理由" * 125)[:500]
    api.set_clock(jst(2026, 4, 2, 9))
    fixed = api.post(f"/v1/invoices/{listed['invoice_id']}/corrections", {"reason": reason, "lines": [
        {"kind": "base_fee", "description": description, "quantity": 5, "unit_price": 800, "tax_rate": "0.10"}]},
        role="operator")
    assert fixed.status_code == 201, fixed.text
    content = api.get(f"/v1/invoices/{fixed.json()['invoice_id']}.pdf").content
    runs = _text_runs(content)
    right_margin, description_column = 595.28 - 28.35, 28.35 + (595.28 - 2 * 28.35) * 0.50  # A4, 10 mm margins
    assert [text for text, end in runs if end > right_margin + 0.5] == []
    assert [text for text, end in runs if "item" in text and end > description_column + 0.5] == []
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    assert all(word in text for word in description.split()), text
    assert "4,000円" in text and "ご請求金額（税込）: 4,400円" in text


def _open(api: Harness, customer: str, name: str, service: str, grade: str, users: int) -> str:
    body = {"customer_number": customer, "service": service, "grade": grade, "users": users,
            "contractor": {**CONTRACTOR, "name": name}, "billing_cycle": "monthly"}
    r = api.post("/v1/contracts", body)
    assert r.status_code == 201, r.text
    cid = str(r.json()["contract_id"])
    assert api.post(f"/v1/contracts/{cid}/approve").status_code == 200
    return cid


def search(api: Harness, role: str = "auditor", **params: Any) -> dict[str, Any]:
    r = api.get("/v1/invoices", role=role, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def totals(page: dict[str, Any]) -> list[int]:
    return [i["total"] for i in page["invoices"]]


def test_rule_book_13_search_by_date_amount_and_counterparty(any_api: Harness) -> None:
    api = any_api
    ids = [_open(api, "S-1", "株式会社サンプル商事", "kintone", "standard", 10),  # 24,200
           _open(api, "S-2", "Example Trading K.K.", "kintone", "light", 5),  # 4,400
           _open(api, "S-3", "株式会社サンプル商事", "garoon", "standard", 10)]  # 11,000
    api.set_clock(jst(2026, 4, 1, 9))
    for cid in ids:
        api.advance(cid)  # INV-2026-000001, -000002, -000003, all issued 2026-04-01
    api.set_clock(jst(2026, 5, 1, 9))
    api.advance(ids[1])  # May for S-2: 4,000 -> 4,400, INV-2026-000004 issued 2026-05-01

    everything = search(api)
    assert totals(everything) == [24200, 4400, 11000, 4400] and everything["next_cursor"] is None
    assert [i["number"] for i in everything["invoices"]] == [f"INV-2026-{n:06d}" for n in (1, 2, 3, 4)]
    assert totals(search(api, issued_from="2026-05-01")) == [4400]  # date range alone
    assert totals(search(api, issued_to="2026-04-30")) == [24200, 4400, 11000]
    assert totals(search(api, amount_min=5000)) == [24200, 11000]  # amount range alone (with tax)
    assert totals(search(api, amount_min=4400, amount_max=11000)) == [4400, 11000, 4400]
    # counterparty alone: exact name after NFKC, case and space folding (full-width letters match)
    assert totals(search(api, counterparty="ＥＸＡＭＰＬＥ trading k.k.")) == [4400, 4400]
    assert totals(search(api, counterparty="株式会社 サンプル商事")) == [24200, 11000]
    assert totals(search(api, counterparty="サンプル商事")) == []  # no partial match on a blind index
    # combined
    assert totals(search(api, counterparty="Example Trading K.K.", issued_from="2026-05-01")) == [4400]
    assert totals(search(api, counterparty="株式会社サンプル商事", amount_max=20000)) == [11000]
    # cursor pagination: pages of 1 follow the same order, nothing twice, nothing left out
    seen, cursor = [], None
    for _ in range(10):
        page = search(api, limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [i["number"] for i in page["invoices"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"INV-2026-{n:06d}" for n in (1, 2, 3, 4)]
    bad = api.get("/v1/invoices", role="auditor", params={"amount_min": 5, "amount_max": 1})
    assert bad.status_code == 422 and bad.json()["field"] == "amount_min"
    assert api.get("/v1/invoices", role="auditor", params={"cursor": "!!"}).json()["field"] == "cursor"


def test_rule_book_6_1_corrections_over_http_never_edit(any_api: Harness) -> None:
    """Void (before payment), corrected invoice and credit note; figures as in the module docstring."""
    api = any_api
    a = _open(api, "V-1", "Void Trading K.K.", "kintone", "standard", 10)
    b = _open(api, "V-2", "Fix Trading K.K.", "kintone", "standard", 10)
    c = _open(api, "V-3", "Credit Trading K.K.", "kintone", "standard", 10)
    api.set_clock(jst(2026, 4, 1, 9))
    for cid in (a, b, c):
        api.advance(cid)  # INV-2026-000001..3, 24,200 each
    inv = {cid: api.invoices(cid)[0]["invoice_id"] for cid in (a, b, c)}
    api.set_clock(jst(2026, 4, 2, 9))
    assert api.post(f"/v1/invoices/{inv[a]}/void", {"reason": "wrong customer"}).status_code == 403  # operators
    voided = api.post(f"/v1/invoices/{inv[a]}/void", {"reason": "wrong customer"}, role="operator")
    assert voided.status_code == 200, voided.text
    doc = api.get(f"/v1/invoices/{inv[a]}").json()
    assert (doc["status"], doc["reason"], doc["outstanding"], doc["total"]) == ("void", "wrong customer", 0, 24200)

    # corrected invoice: 8 users at the campaign price 1,200 = 9,600 + 960 = 10,560
    fixed = api.post(f"/v1/invoices/{inv[b]}/corrections", {"reason": "8 users, not 10", "lines": [
        {"kind": "campaign_fee", "description": "kintone standard 2026-04 x 8 users", "quantity": 8,
         "unit_price": 1200, "tax_rate": "0.10"}]}, role="operator")
    assert fixed.status_code == 201, fixed.text
    assert (fixed.json()["number"], fixed.json()["total"]) == ("INV-2026-000004", 10560)
    new = api.get(f"/v1/invoices/{fixed.json()['invoice_id']}").json()
    assert (new["kind"], new["original"]["number"], new["rate_totals"][0]["tax"]) == ("correction", "INV-2026-000002",
                                                                                    960)
    assert api.get(f"/v1/invoices/{inv[b]}").json()["status"] == "corrected"
    bad = api.post(f"/v1/invoices/{inv[b]}/corrections", {"reason": "x", "lines": [
        {"description": "y", "quantity": 1, "unit_price": 1, "tax_rate": "0.05"}]}, role="operator")
    assert bad.status_code == 422

    # paid in full, then a 5,000 discount: credit note 5,000 + 500 = 5,500 (Art. 57-4(3))
    paid = api.post(f"/v1/contracts/{c}/payments", {"invoice_id": inv[c], "amount": 24200, "paid_on": "2026-04-02"})
    assert paid.status_code == 200, paid.text
    assert api.post(f"/v1/invoices/{inv[c]}/void", {"reason": "late"}, role="operator").status_code == 409
    note = api.post(f"/v1/invoices/{inv[c]}/credit-notes", {"amount": 5000, "reason": "discount"}, role="operator")
    assert note.status_code == 201, note.text
    assert (note.json()["number"], note.json()["total"]) == ("INV-2026-000005", 5500)
    found = search(api, counterparty="Credit Trading K.K.")["invoices"]
    assert [(i["document_type"], i["total"]) for i in found] == [("invoice", 24200), ("credit_note", 5500)]
    assert found[0]["refund_due"] == 5500 and found[0]["credited"] == 5500


def test_art_9_4_late_interest_billed_on_the_next_invoice_over_http(any_api: Harness) -> None:
    """garoon standard x 100: 110,000 a month. April (due 05-31) paid 07-01: 1,310 interest (30 days).
    July: 100,000 + 10,000 tax + 1,310 outside tax = 111,310."""
    api = any_api
    cid = _open(api, "I-1", "Interest K.K.", "garoon", "standard", 100)
    for month in (4, 5, 6):
        api.set_clock(jst(2026, month, 1, 9))
        api.advance(cid)
    april = api.invoices(cid)[0]
    api.set_clock(jst(2026, 7, 1, 9))
    paid = api.post(f"/v1/contracts/{cid}/payments", {"invoice_id": april["invoice_id"], "amount": 110000,
                                                       "paid_on": "2026-07-01"})
    assert paid.status_code == 200, paid.text
    api.advance(cid)
    july = [i for i in api.invoices(cid) if i["period"] == "2026-07"][0]
    assert july["total"] == 111310
    assert [(x["kind"], x["amount"], x["tax_rate"]) for x in july["lines"]] == [
        ("base_fee", 100000, "0.10"), ("late_interest", 1310, None), ("tax", 10000, None)]
    again = api.get(f"/v1/invoices/{april['invoice_id']}").json()
    assert again["interest_billed"] == 1310
    waive = api.post(f"/v1/invoices/{april['invoice_id']}/interest-waiver", {"reason": "x"}, role="operator")
    assert waive.status_code == 409 and waive.json()["article"] == "Art. 9.4"  # already billed


def test_rule_book_6_1_contracts_invoices_export_jsonl_and_csv(tmp_path: Path) -> None:
    """Two contracts issued in April (24,200 and 4,400), exported through the command line."""
    import csv
    import json
    import os
    import sys

    from infrastructure.bootstrap import build_services
    from infrastructure.settings import Settings

    db = tmp_path / "export.sqlite"
    services = build_services(Settings(database_url=None, sqlite_path=db))
    app = services.app
    for customer, grade, users in (("E-1", "standard", 10), ("E-2", "light", 5)):
        r = app.open_contract(customer, "kintone", grade, users, CONTRACTOR, jst(2026, 3, 2),
                              cycle=BillingCycle.MONTHLY)
        app.approve(r.aggregate_id, jst(2026, 3, 24))
        app.advance(r.aggregate_id, Month(2026, 4))
    services.close()
    env = {**os.environ, "CONTRACTS_SQLITE_PATH": str(db)}
    env.pop("CONTRACTS_DATABASE_URL", None)
    root = Path(__file__).resolve().parents[2]
    cli = [sys.executable, "-m", "api.cli"]
    lines = subprocess.run([*cli, "invoices", "export", "--format", "jsonl"], env=env, cwd=root, text=True,
                           capture_output=True, timeout=120, check=True)
    docs = [json.loads(x) for x in lines.stdout.splitlines()]
    assert [(d["number"], d["total"], d["recipient"]) for d in docs] == [
        ("INV-2026-000001", 24200, CONTRACTOR["name"]), ("INV-2026-000002", 4400, CONTRACTOR["name"])]
    assert "exported 2 documents" in lines.stderr
    out = tmp_path / "invoices.csv"
    subprocess.run([*cli, "invoices", "export", "--format", "csv", "--redact", "--out", str(out),
                    "--issued-from", "2026-04-01", "--issued-to", "2026-04-30"], env=env, cwd=root, text=True,
                   capture_output=True, timeout=120, check=True)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["number"], r["taxable_10"], r["tax_10"], r["total"], r["recipient"]) for r in rows] == [
        ("INV-2026-000001", "22000", "2200", "24200", ""), ("INV-2026-000002", "4000", "400", "4400", "")]
    assert rows[0]["issuer_registration_number"] == ISSUER_NUMBER


def test_rule_book_6_1_csv_export_signed_total_nets_credit_notes_voids_and_replaced_invoices(tmp_path: Path) -> None:
    """An accounting import that sums a column must get what the documents claim. A: kintone standard x 10,
    April 24,200 (INV-1), a 1,000 credit note 04-03 (1,000 + 100 = 1,100: INV-3), May 12,000 + 1,200 =
    13,200 (INV-5) voided 05-02. B: kintone light x 5, April 4,400 (INV-2) replaced 04-05 by a corrected
    invoice of 4,400 (INV-4). ``total`` stays as issued (positive); ``signed_total`` is negative for the
    credit note and 0 for the void and the replaced original: 24,200 - 1,100 + 4,400 = 27,500 =
    A's 23,100 + B's 4,400 still claimed."""
    import csv
    from decimal import Decimal

    from api.cli.invoices import CSV_COLUMNS, documents, write
    from domain.billing import InvoiceLine
    from infrastructure.bootstrap import build_read_models, build_services
    from infrastructure.settings import Settings

    services = build_services(Settings(database_url=None, sqlite_path=tmp_path / "signed.sqlite"))
    try:
        app = services.app
        ids = []
        for customer, grade, users in (("S-1", "standard", 10), ("S-2", "light", 5)):
            r = app.open_contract(customer, "kintone", grade, users, CONTRACTOR, jst(2026, 3, 2),
                                  cycle=BillingCycle.MONTHLY)
            app.approve(r.aggregate_id, jst(2026, 3, 24))
            app.advance(r.aggregate_id, Month(2026, 4))
            ids.append(r.aggregate_id)
        a, b = ids

        def first(cid: Any, period: str) -> Any:
            return next(i.invoice_id for i in app.get_contract(cid).ledger.invoices.values() if i.period == period)
        app.issue_credit_note(a, first(a, "2026-04"), 1_000, "goodwill", jst(2026, 4, 3))
        app.correct_invoice(b, first(b, "2026-04"), [InvoiceLine(
            "base_fee", "Art. 9.1 base fee", "kintone light 2026-04 x 5 users", 4_000, 5, 800, Decimal("0.10"))],
            "wrong description", jst(2026, 4, 5))
        app.advance(a, Month(2026, 5))
        app.void_invoice(a, first(a, "2026-05"), "issued in error", jst(2026, 5, 2))
        models = build_read_models(services)
        models.runner.catch_up()
        out = io.StringIO()
        assert write(documents(models, None, None, True), "csv", out) == 5
    finally:
        services.close()
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(CSV_COLUMNS) and CSV_COLUMNS[-1] == "signed_total"  # existing columns unmoved
    assert [(r["number"][-1], r["document_type"], r["status"], r["total"], r["signed_total"]) for r in rows] == [
        ("1", "invoice", "issued", "24200", "24200"), ("2", "invoice", "corrected", "4400", "0"),
        ("3", "credit_note", "issued", "1100", "-1100"), ("4", "invoice", "issued", "4400", "4400"),
        ("5", "invoice", "void", "13200", "0")]
    assert sum(int(r["signed_total"]) for r in rows) == 27_500
