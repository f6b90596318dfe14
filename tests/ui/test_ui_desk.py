"""The auditor's desk (TestClient): the dashboard's figures, the contract list's filters and
pages, and the CSV export, against values computed by hand from the rule book."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

from api_harness import Harness
from ui_kit import CONTRACTOR, MAY, api_call, browser_client, make_history

from domain.contract import State


def _card(html: str, element_id: str) -> str:
    """The text of one card of the dashboard."""
    match = re.search(rf'<div class="card[^"]*" id="{element_id}">(.*?)(?=<div class="card|</section>)', html, re.S)
    assert match is not None, element_id
    return unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


def _open(api: Harness, customer: str, reference: str = "", service: str = "kintone") -> str:
    body = {"customer_number": customer, "service": service, "grade": "standard", "users": 10,
            "contractor": CONTRACTOR, "trial": True}
    if reference:
        body["reference"] = reference
    r = api_call(api)("POST", "/v1/contracts", body, "billing")
    assert r.status_code == 201, r.text
    return str(r.json()["contract_id"])


def test_dashboard_counts_states_overdue_amounts_deadlines_lag_and_chain(api: Harness) -> None:
    made = make_history(api_call(api))  # active; May invoice 13,200 yen due 06-30 (Art. 9.2), unpaid
    _open(api, "UI-0002")  # a trial
    r = api_call(api)("PUT", "/v1/clock", {"now": "2026-07-11T01:00:00Z"}, "billing")  # 07-11 10:00 JST
    assert r.status_code == 200, r.text
    api.client.app.state.ctx.read_models.wait_for(api.event_count(), 10)
    html = browser_client(api, "auditor").get("/ui/").text
    counts = {s: int(n) for s, n in re.findall(r'data-state="([a-z_]+)">(\d+)<', html)}
    assert counts == {s.value: 0 for s in State} | {"active": 1, "trial": 1}
    # overdue on 07-11: May (due 06-30) only; Art. 9.4 interest for 07-01..07-10 (the days before
    # today): 13,200 x 14.5 % x 10 / 365 = 52.4 -> 52 yen; June is due 07-31, April was paid
    overdue = _card(html, "overdue")
    assert "2026-05" in overdue and "2026-06-30" in overdue and "2026-04" not in overdue
    assert re.search(r'id="overdue-total">13,200<', html) and MAY == 13_200
    assert "52" in overdue.split("2026-06-30")[1]
    assert made.contract_id in html  # the customer links to the contract page
    upcoming = _card(html, "upcoming")
    assert "2026-07-11 – 2026-07-25" in upcoming  # today .. today + 14 days
    # Art. 5.2: the trial opened on 06-20 ends 30 days later (07-20), inside the window
    assert "2026-07-20" in upcoming and "trial ends (Art. 5.2)" in upcoming
    # no scheduler runs in this test: May's payment-overdue deadline (Art. 9.5, the day after the
    # due date, 07-01) and the July month start are still open, shown as not yet handled
    unfired = _card(html, "unfired")
    assert "2026-07-01" in unfired and "payment overdue" in unfired and "2026-07-01" not in upcoming
    assert re.search(r'id="lag" data-lag="0"', html)  # the read side caught up above
    assert 'class="badge ok">intact<' in html and 'id="chain-alarm"' not in html


def test_contract_list_filters_by_partial_customer_service_state_and_reference(api: Harness) -> None:
    plain = _open(api, "ACME-0001")
    with_ref = _open(api, "ACME-0001", reference="PO-7")
    other = _open(api, "ZEN-0042", service="garoon")
    client = browser_client(api, "auditor")

    def listed(**params: str) -> set[str]:
        r = client.get("/ui/contracts", params=params)
        assert r.status_code == 200
        return set(re.findall(r'href="/ui/contracts/([0-9a-f-]{36})"', r.text))

    assert listed() == {plain, with_ref, other}
    assert listed(customer="cme-00") == {plain, with_ref}  # part of the number, any case
    assert listed(customer="0042") == {other}
    assert listed(service="garoon") == {other}
    assert listed(ref="yes") == {with_ref}  # a customer's contract with a reference is found
    assert listed(customer="ACME", ref="no") == {plain}
    assert listed(state="trial") == {plain, with_ref, other} and listed(state="active") == set()
    assert client.get("/ui/contracts", params={"state": "bogus"}).status_code == 400
    assert client.get("/ui/contracts", params={"page": "x"}).status_code == 400


def test_contract_list_is_paginated(api: Harness) -> None:
    ids = [_open(api, f"PAGE-{n:03d}") for n in range(27)]  # 25 a page: pages of 25 and 2
    client = browser_client(api, "auditor")
    first = client.get("/ui/contracts").text
    assert "page 1 of 2" in first and len(re.findall(r'<a class="mono" href="/ui/contracts/', first)) == 25
    assert 'rel="next" href="?page=2"' in first
    second = client.get("/ui/contracts", params={"page": "2"}).text
    shown = re.findall(r'<a class="mono" href="/ui/contracts/([0-9a-f-]{36})"', second)
    assert shown == ids[25:]  # sorted by customer number: PAGE-025, PAGE-026
    assert "page 2 of 2" in client.get("/ui/contracts", params={"page": "9"}).text  # past the end: the last


def test_csv_export_is_utf8_with_bom_and_lists_every_matching_contract(api: Harness) -> None:
    plain = _open(api, "=CSV-1")  # a customer number a spreadsheet would run as a formula
    _open(api, "OTHER-1")
    client = browser_client(api, "auditor")
    r = client.get("/ui/contracts.csv", params={"customer": "csv"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="contracts.csv"'
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows == [["contract_id", "customer_number", "service", "reference", "state"],
                    [plain, "'=CSV-1", "kintone", "", "trial"]]
    page = client.get("/ui/contracts", params={"customer": "csv"}).text
    assert 'href="/ui/contracts.csv?customer=csv"' in page
    assert browser_client(api, None).get("/ui/contracts.csv", follow_redirects=False).status_code == 303
