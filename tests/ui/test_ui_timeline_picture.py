"""Issue 20: the contract page draws its timeline as a server-rendered SVG (states, invoice
periods with their due dates, SLA outages, events) under the page's strict CSP (no inline style,
no script). The history of ``make_history``: trial from 03-02, active from 04-01 (Art. 8.1),
April invoice 24,200 yen due 05-31 paid 06-15, May and June invoices 13,200 yen open on 06-20."""

from __future__ import annotations

import re
from html import unescape

from api_harness import Harness
from ui_kit import api_call, browser_client, make_history


def test_contract_page_draws_the_timeline_under_its_csp(api: Harness) -> None:
    made = make_history(api_call(api))
    r = browser_client(api, "auditor").get(f"/ui/contracts/{made.contract_id}")
    assert r.status_code == 200
    assert "style-src 'self'" in r.headers["content-security-policy"]
    svg = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" id="timeline-chart".*?</svg>', r.text, re.S)
    assert svg is not None
    picture = svg.group(0)
    assert "style=" not in picture and "<script" not in picture and "<style" not in picture
    titles = [unescape(t) for t in re.findall(r"<title>([^<]*)</title>", picture)]
    assert "invoice 2026-04: 24,200 yen, due 2026-05-31, paid" in titles
    assert "invoice 2026-05: 13,200 yen, due 2026-06-30, 13,200 yen outstanding" in titles
    assert "invoice 2026-06: 13,200 yen, due 2026-07-31, 13,200 yen outstanding" in titles
    assert {"trial from 2026-03-02", "active from 2026-04-01"} <= set(titles)
    rows = len(re.findall(r'<td class="num muted">\d+</td>', r.text))  # the timeline table's events
    assert picture.count('<circle class="event"') == rows > 0
    assert picture.count('class="band invoice-paid"') == 1 and picture.count('class="band invoice-open"') == 2
    assert "as of 2026-06-20" in titles
