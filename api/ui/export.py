"""CSV downloads of what a list page shows: UTF-8 with a byte-order mark (Excel in Japan opens a
UTF-8 file without one as Shift_JIS and garbles the Japanese), CRLF line ends (RFC 4180, the
``csv`` module's default), and cells that a spreadsheet would run as a formula quoted with a
leading apostrophe (CSV injection: ``=``, ``+``, ``-``, ``@``, tab, carriage return)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from starlette.responses import Response

BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return BOM + out.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]],
                 headers: Mapping[str, str]) -> Response:
    return Response(csv_text(header, rows).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={**headers, "Cache-Control": "no-store",
                             "Content-Disposition": f'attachment; filename="{filename}"'})
