"""``contracts invoices export``: issued invoices and credit notes for accounting systems, as JSON
Lines (the document as issued, one per line) or CSV (one row per document, totals per tax rate),
ordered by issue date and number, optionally for an issue-date range (rule book 6.1, 13)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from infrastructure.bootstrap import build_read_models, build_services
from infrastructure.read_side import ReadModelsImpl

PAGE = 500
CSV_COLUMNS = ("number", "document_type", "kind", "status", "issued_on", "due_on", "period", "recipient",
               "taxable_10", "tax_10", "taxable_8", "tax_8", "untaxed", "total", "paid", "outstanding",
               "original_number", "reason", "invoice_id", "contract_id", "issuer_registration_number",
               "document_hash", "signed_total")
"""Columns are only ever added at the end, so an import mapped by position keeps working."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("invoices", help="issued invoices and credit notes")
    cmds = p.add_subparsers(dest="invoices_command", required=True)
    export = cmds.add_parser("export", help="export issued invoices and credit notes (JSON Lines or CSV)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--out", type=Path, default=None, help="file to write (default: standard output)")
    export.add_argument("--issued-from", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD")
    export.add_argument("--issued-to", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD")
    export.add_argument("--redact", action="store_true", help="leave the recipient's name out (personal data)")
    export.set_defaults(func=_export)


def documents(models: ReadModelsImpl, issued_from: date | None, issued_to: date | None,
              redact: bool) -> Iterator[dict[str, Any]]:
    """Every issued document of the range, with its recipient unless ``redact``."""
    after: tuple[date, str] | None = None
    while True:
        page = models.search_invoices(issued_from=issued_from, issued_to=issued_to, after=after, limit=PAGE)
        for row in page:
            if not redact:
                row["recipient"] = models.invoice(uuid.UUID(row["invoice_id"])).recipient
            yield row
        if len(page) < PAGE:
            return
        after = (date.fromisoformat(page[-1]["issued_on"]), page[-1]["number"])


def signed_total(doc: dict[str, Any]) -> int:
    """What the document claims, signed for an import that sums a column: an invoice in force its
    total, a credit note (返還インボイス) minus its total, a void invoice or one replaced by a
    corrected invoice 0 (rule book 6.1: they claim nothing; ``total`` stays as issued)."""
    if doc["status"] in ("void", "corrected"):
        return 0
    return -int(doc["total"]) if doc["document_type"] == "credit_note" else int(doc["total"])


def csv_row(doc: dict[str, Any]) -> dict[str, Any]:
    rates = {r["rate"]: r for r in doc["rate_totals"]}
    untaxed = sum(x["amount"] for x in doc["lines"] if x["kind"] != "tax" and x["tax_rate"] is None)
    return {
        **{k: doc.get(k) for k in ("number", "document_type", "kind", "status", "issued_on", "due_on", "period",
                                   "total", "paid", "outstanding", "reason", "invoice_id", "contract_id",
                                   "document_hash")},
        "recipient": doc.get("recipient", ""),
        "taxable_10": rates.get("0.10", {}).get("taxable", 0), "tax_10": rates.get("0.10", {}).get("tax", 0),
        "taxable_8": rates.get("0.08", {}).get("taxable", 0), "tax_8": rates.get("0.08", {}).get("tax", 0),
        "untaxed": untaxed,
        "original_number": (doc.get("original") or {}).get("number", ""),
        "issuer_registration_number": (doc.get("issuer") or {}).get("registration_number", ""),
        "signed_total": signed_total(doc),
    }


def write(docs: Iterator[dict[str, Any]], fmt: str, out: TextIO) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for doc in docs:
            writer.writerow(csv_row(doc))
            count += 1
        return count
    for doc in docs:
        doc.pop("late_interest", None)
        doc.pop("interest_as_of", None)
        out.write(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def _export(args: argparse.Namespace) -> int:
    services = build_services(args.settings)
    try:
        models = build_read_models(services)
        if models.in_process:  # embedded SQLite: no runner elsewhere brings the read side up to date
            models.runner.catch_up()
        docs = documents(models, args.issued_from, args.issued_to, args.redact)
        if args.out is None:
            count = write(docs, args.format, sys.stdout)
        else:
            with args.out.open("w", encoding="utf-8", newline="") as out:
                count = write(docs, args.format, out)
        print(f"exported {count} documents", file=sys.stderr)
        return 0
    finally:
        services.close()
