"""The contract page's timeline drawn as a picture (issue 20): server-rendered SVG, no script, no
inline style (the page's CSP stays ``style-src 'self'``: colours come from ``ui.css`` classes).

Four lanes on one date axis, from the first event to the page's date (or the last dated fact):

- **State**: the contract's state between events (trial, active, suspended ... as the timeline
  table's "state after"), so a suspension window shows as its own band;
- **Invoices**: each invoice's service period (month, or the year of an annual one), paid or
  not as of the page's date, with its due date marked;
- **SLA**: each claimed outage, from its start to its end;
- **Events**: a dot per event on its business date (hover: the event and its date).

Every text is escaped; the picture holds what the tables below it hold, nothing more (no
personal data).
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape
from typing import Any

from markupsafe import Markup

WIDTH, LEFT, RIGHT = 960, 80, 16
LANE, GAP, TOP = 22, 8, 22
LANES = ("State", "Invoices", "SLA", "Events")


def _month_span(period: str) -> tuple[date, date]:
    """``2026-05`` -> (05-01, 05-31); ``2026-05..2027-04`` -> (2026-05-01, 2027-04-30)."""
    first, _, last = period.partition("..")
    start = date(int(first[:4]), int(first[5:7]), 1)
    end_month = last or first
    y, m = int(end_month[:4]), int(end_month[5:7])
    end = date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
    return start, end


class _Axis:
    def __init__(self, start: date, end: date) -> None:
        self.start = start
        self.days = max(1, (end - start).days + 1)

    def x(self, day: date) -> float:
        span = WIDTH - LEFT - RIGHT
        return LEFT + span * min(max((day - self.start).days, 0), self.days) / self.days


def _lane_y(index: int) -> int:
    return TOP + index * (LANE + GAP)


def _rect(axis: _Axis, lane: int, start: date, end: date, css: str, title: str) -> str:
    x0, x1 = axis.x(start), axis.x(end + timedelta(days=1))
    return (f'<rect class="{css}" x="{x0:.1f}" y="{_lane_y(lane)}" width="{max(x1 - x0, 2):.1f}" height="{LANE}">'
            f"<title>{escape(title)}</title></rect>")


def timeline_svg(history: Any, today: date) -> Markup:
    """The picture of ``history`` (``api.ui.history.History``) as of its date; empty without events."""
    rows = list(history.rows)
    if not rows:
        return Markup("")
    end_of_page = history.as_of or today
    dates = [r.business_date for r in rows]
    for inv in history.invoices:
        dates += [*_month_span(inv.invoice.period), inv.invoice.due_on]
    start = min(dates)
    end = max(end_of_page, max(dates))
    start = date(start.year, start.month, 1)
    axis = _Axis(start, end)
    height = _lane_y(len(LANES)) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline-chart" class="timeline-chart" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="timeline-chart-title">',
             '<title id="timeline-chart-title">The contract on a time axis: states, invoice periods, SLA claims '
             'and events</title>']
    for i, name in enumerate(LANES):
        parts.append(f'<text class="lane-label" x="4" y="{_lane_y(i) + LANE - 7}">{name}</text>')
    # month ticks and labels
    month = start
    while month <= end:
        x = axis.x(month)
        parts.append(f'<line class="tick" x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{_lane_y(len(LANES)) - GAP}"/>')
        if month.month == 1 or month == start or axis.days < 800:
            parts.append(f'<text class="tick-label" x="{x + 2:.1f}" y="{TOP - 8}">{month:%Y-%m}</text>')
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    # state bands: each row's state lasts until the next row's business date
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        until = (following.business_date - timedelta(days=1)) if following is not None else end_of_page
        if until < row.business_date:
            continue
        state = str(row.state)
        parts.append(_rect(axis, 0, row.business_date, until, f"band state-{escape(state)}",
                           f"{state.replace('_', ' ')} from {row.business_date}"))
    for inv in history.invoices:
        invoice = inv.invoice
        first, last = _month_span(invoice.period)
        paid = invoice.outstanding <= 0
        parts.append(_rect(axis, 1, first, last, "band invoice-paid" if paid else "band invoice-open",
                           f"invoice {invoice.period}: {invoice.total:,} yen, due {invoice.due_on}, "
                           + ("paid" if paid else f"{invoice.outstanding:,} yen outstanding")))
    for inv in history.invoices:  # over every band: a due date falls in a later invoice's period
        invoice = inv.invoice
        x = axis.x(invoice.due_on + timedelta(days=1)) - 1
        parts.append(f'<path class="due" d="M{x:.1f} {_lane_y(1) + LANE + 1} l-4 6 h8 z">'
                     f"<title>{escape(f'invoice {invoice.period} due {invoice.due_on}')}</title></path>")
    for claim in history.claims:
        if claim.outage_from is not None and claim.outage_to is not None:
            parts.append(_rect(axis, 2, claim.outage_from, claim.outage_to, "band sla",
                               f"outage {claim.outage_from} to {claim.outage_to}: claim {claim.status}"))
    for row in rows:
        x = axis.x(row.business_date)
        parts.append(f'<circle class="event" cx="{x:.1f}" cy="{_lane_y(3) + LANE / 2:.1f}" r="4">'
                     f"<title>{escape(f'{row.business_date} {row.event} ({row.article})')}</title></circle>")
    x = axis.x(end_of_page)
    parts.append(f'<line class="today" x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{_lane_y(len(LANES))}">'
                 f"<title>{escape(f'as of {end_of_page}')}</title></line>")
    parts.append("</svg>")
    return Markup("".join(parts))
