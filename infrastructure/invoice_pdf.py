"""The printable document of an issued invoice or credit note (rule book 6.1), with fpdf2.

Japanese labels and text are set in an embedded TrueType font (Debian's IPAex Gothic, installed
by ``./dev``; another font with ``CONTRACTS_INVOICE_FONT_PATH``), subset to the glyphs used. The
page shows every item Art. 57-4(1) asks of a qualified invoice (for a credit note Art. 57-4(3)):
issuer and registration number, transaction date or period, what was supplied with reduced-rate
items marked, totals and consumption tax per rate, and the recipient. Rendering is
deterministic (creation date = issue date), so the same invoice always gives the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

from domain.billing import Invoice
from domain.errors import DomainError
from domain.invoicing import TAX_RATES

DEFAULT_FONT = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
FONT = "jp"


class FontMissing(DomainError):
    """The Japanese font is not installed: the document cannot be rendered (HTTP 503)."""

    kind = "unavailable"


def yen(amount: int) -> str:
    return f"{amount:,}円"


def _rate_label(rate: str | None) -> str:
    if rate is None:
        return "対象外"
    return f"{(Decimal(rate) * 100).normalize():f}%"


def _row(pdf: FPDF, cells: list[tuple[str, float, str]], line_height: float = 5.0) -> None:
    """One table row of bordered cells, each wrapped inside its column (Art. 57-4(1) item 3: what was
    supplied stays readable whatever its length, and never covers the amounts); as tall as its
    tallest cell, on the next page when it does not fit."""
    heights = []
    for text, w, _ in cells:
        lines = pdf.multi_cell(w, line_height, text, dry_run=True, output=MethodReturnValue.LINES)
        heights.append(len(lines) if isinstance(lines, list) else 1)
    height = max(heights) * line_height + 2
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
    x, y = pdf.l_margin, pdf.get_y()
    for text, w, align in cells:
        pdf.rect(x, y, w, height)
        pdf.set_xy(x, y + 1)
        pdf.multi_cell(w, line_height, text, align=align)
        x += w
    pdf.set_xy(pdf.l_margin, y + height)


def render_invoice_pdf(invoice: Invoice, recipient: str, font_path: Path | None = None) -> bytes:
    path = font_path or DEFAULT_FONT
    if not path.is_file():
        raise FontMissing("rule book 6.1", "the Japanese font for invoice documents is not installed "
                          "(set CONTRACTS_INVOICE_FONT_PATH or run ./dev to install fonts-ipaexfont-gothic)",
                          "invoice_font_path")
    credit = invoice.document_type == "credit_note"
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.combine(invoice.issued_on, time(0, 0), tzinfo=UTC))
    pdf.set_title(f"{invoice.number}")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font(FONT, "", str(path))
    pdf.add_page()
    width = pdf.epw

    pdf.set_font(FONT, size=18)
    title = "適格返還請求書（返還インボイス）" if credit else "請求書（適格請求書）"
    if invoice.kind == "correction":
        title = "修正請求書（修正インボイス）"
    pdf.cell(width, 12, title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)

    pdf.set_font(FONT, size=10)
    issuer = invoice.issuer or {}
    left = [
        f"{recipient} 御中",
        "",
        f"請求書番号: {invoice.number}",
        f"発行日: {invoice.issued_on.isoformat()}",
        f"{'返還日' if credit else '取引期間'}: {invoice.issued_on.isoformat() if credit else invoice.period}",
    ]
    if not credit:
        left.append(f"お支払期限: {invoice.due_on.isoformat()}")
    if credit:  # Art. 57-4(3) item 2: the date of the supply returned (a credit note keeps the original's period)
        left.append(f"元の取引期間: {invoice.period}")
    if invoice.original:
        left.append(f"元の請求書: {invoice.original.get('number', '')} ({invoice.original.get('issued_on', '')})")
    if invoice.reason:
        left.append(f"理由: {invoice.reason}")
    right = [
        issuer.get("name", "(発行者未設定)"),
        f"登録番号: {issuer.get('registration_number', '-')}",
        issuer.get("address", ""),
        issuer.get("contact", ""),
    ]
    top = pdf.get_y()
    for text in left:  # wrapped: a name or a reason never runs off the page
        pdf.multi_cell(width * 0.55, 6, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    bottom = pdf.get_y()
    pdf.set_y(top)
    for text in right:
        pdf.set_x(pdf.l_margin + width * 0.55)
        pdf.multi_cell(width * 0.45, 6, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(bottom, pdf.get_y()) + 4)

    pdf.set_font(FONT, size=13)
    label = "ご返還金額（税込）" if credit else "ご請求金額（税込）"
    pdf.cell(width, 9, f"{label}: {yen(invoice.total)}", border="B", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    pdf.set_font(FONT, size=9)
    widths = (0.50, 0.09, 0.14, 0.15, 0.12)
    heads = ("内容", "数量", "単価", "金額", "税率")
    _row(pdf, [(head, width * share, "C") for head, share in zip(heads, widths, strict=True)])
    for line in invoice.lines:
        if line.kind == "tax":
            continue
        reduced = line.tax_rate is not None and TAX_RATES.get(line.tax_rate) == "reduced"
        cells = (
            ("※ " if reduced else "") + line.description,
            "" if line.quantity is None else str(line.quantity),
            "" if line.unit_price is None else yen(line.unit_price),
            yen(line.amount),
            _rate_label(None if line.tax_rate is None else str(line.tax_rate)),
        )
        _row(pdf, [(text, width * share, align)
                   for text, share, align in zip(cells, widths, ("L", "R", "R", "R", "C"), strict=True)])
    pdf.ln(3)

    pdf.set_font(FONT, size=10)
    pdf.cell(width, 6, "税率ごとの合計（税抜）と消費税額" + ("（返還分）" if credit else ""),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for total in invoice.rate_totals:
        kind = "軽減税率" if TAX_RATES.get(total.rate) == "reduced" else "標準税率"
        pdf.cell(width, 6, f"{_rate_label(str(total.rate))}対象（{kind}）: {yen(total.taxable)}"
                           f"　消費税: {yen(total.tax)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    untaxed = sum(line.amount for line in invoice.lines if line.kind != "tax" and line.tax_rate is None)
    if untaxed:
        pdf.cell(width, 6, f"不課税（遅延損害金など）: {yen(untaxed)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(width, 6, f"合計: {yen(invoice.total)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if any(line.tax_rate is not None and TAX_RATES.get(line.tax_rate) == "reduced" for line in invoice.lines):
        pdf.cell(width, 6, "※は軽減税率（8%）対象", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    pdf.set_font(FONT, size=7)
    pdf.multi_cell(width, 4, f"文書ハッシュ (SHA-256): {invoice.document_hash}")
    return bytes(pdf.output())
