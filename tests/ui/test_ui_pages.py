"""The web pages without a browser (TestClient): login and sessions, roles, escaping, erased
data, and the as-of figures against hand-computed values and against the read side."""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from datetime import UTC, date, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from api_harness import Harness, jst
from ui_kit import APRIL, CONTRACTOR, CUSTOMER, EXPECTED, TODAY, api_call, browser_client, make_history, yen

from api.ui.history import fold
from api.ui.sessions import COOKIE
from domain.calendar import Month
from domain.contract import BillingCycle
from domain.sla import OutageCause


def invoice_figures(html: str) -> dict[str, tuple[int, int, int]]:
    """{period: (total, outstanding, late interest)} read from the page's invoice table."""
    figures = {}
    for block in re.findall(r'<tbody class="invoice" data-invoice="([^"]+)">(.*?)</tbody>', html, re.S):
        period, body = block
        cell = {f: yen(re.search(rf'data-field="{f}">([^<]*)<', body).group(1))  # type: ignore[union-attr]
                for f in ("total", "outstanding", "late_interest")}
        figures[unescape(period)] = (cell["total"], cell["outstanding"], cell["late_interest"])
    return figures


def total_outstanding(html: str) -> int:
    match = re.search(r'id="outstanding-total">([^<]*)<', html)
    return yen(match.group(1)) if match else 0


# --------------------------------------------------------------------------- login and sessions


def test_pages_need_a_login_and_redirect_to_it(api: Harness) -> None:
    client = browser_client(api, None)
    cid = uuid.uuid4()
    for path in ("/ui/", f"/ui/contracts/{cid}?as_of=2026-04-01"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/ui/login?next=/ui/")
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
    login = client.get("/ui/login")
    assert login.status_code == 200 and 'type="password"' in login.text
    assert client.get("/ui/static/ui.css").headers["content-type"].startswith("text/css")
    # the API keeps its own header auth: a UI cookie is no API key
    page = browser_client(api, "auditor")
    assert page.get("/v1/clock").status_code == 401


def test_login_cookie_is_http_only_strict_and_secure_over_https(api: Harness) -> None:
    client = browser_client(api, None)
    r = client.post("/ui/login", data={"key": api.keys["auditor"], "next": f"/ui/contracts/{uuid.uuid4()}"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/contracts/")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(COOKIE + "=")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/ui" in cookie
    assert "secure" not in cookie.lower()  # plain http: a Secure cookie would never come back
    assert api.keys["auditor"] not in cookie
    https = browser_client(api, None, base_url="https://testserver")
    r = https.post("/ui/login", data={"key": api.keys["operator"]}, follow_redirects=False)
    assert "secure" in r.headers["set-cookie"].lower()
    # open redirects are not followed
    r = client.post("/ui/login", data={"key": api.keys["auditor"], "next": "//evil.example/ui/"},
                    follow_redirects=False)
    assert r.headers["location"] == "/ui/"


def test_bad_key_billing_role_and_cross_site_posts_are_refused(api: Harness) -> None:
    client = browser_client(api, None)
    r = client.post("/ui/login", data={"key": "ck_not-a-key"}, follow_redirects=False)
    assert r.status_code == 401 and "not valid" in r.text and "set-cookie" not in r.headers
    r = client.post("/ui/login", data={"key": api.keys["billing"]}, follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert "Role billing may not use these pages" in unescape(r.text)
    r = client.post("/ui/login", data={"key": api.keys["auditor"]}, headers={"Origin": "https://evil.example"},
                    follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = client.post("/ui/login", json={"key": api.keys["auditor"]}, follow_redirects=False)
    assert r.status_code == 415


def test_key_is_never_in_urls_pages_or_logs(api: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = browser_client(api, None)
    key = api.keys["operator"]
    r = client.post("/ui/login", data={"key": key}, follow_redirects=True)
    assert r.status_code == 200
    assert all(key not in str(h.url) for h in [*r.history, r])
    assert key not in r.text
    assert key not in caplog.text and "web login of operator" in caplog.text


def test_logout_and_revocation_end_the_session(api: Harness) -> None:
    client = browser_client(api, "auditor")
    assert client.get("/ui/").status_code == 200
    old = client.cookies.get(COOKIE)
    r = client.post("/ui/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert client.get("/ui/", follow_redirects=False).status_code == 303
    replay = browser_client(api, None)
    replay.cookies.set(COOKIE, old or "", path="/ui")
    assert replay.get("/ui/", follow_redirects=False).status_code == 303  # the old session id is dead
    # revoking the key ends its sessions at once
    operator = browser_client(api, "operator")
    assert operator.get("/ui/").status_code == 200
    name = next(k.name for k in api.store.list_keys() if k.role == "operator")
    api.store.revoke_key(name, datetime.now(UTC))
    assert operator.get("/ui/", follow_redirects=False).status_code == 303


def test_pages_send_security_headers(api: Harness) -> None:
    r = browser_client(api, "auditor").get("/ui/")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
    assert "<script" not in r.text  # no JavaScript at all


# --------------------------------------------------------------------------- content


def test_search_by_customer_number_and_by_id(api: Harness) -> None:
    made = make_history(api_call(api))
    client = browser_client(api, "auditor")
    r = client.get("/ui/", params={"q": CUSTOMER})
    assert r.status_code == 200 and f"/ui/contracts/{made.contract_id}" in r.text
    r = client.get("/ui/", params={"q": made.contract_id}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/contracts/{made.contract_id}"
    r = client.get("/ui/", params={"q": "NOBODY"})
    assert 'id="no-results"' in r.text
    # a contract opened with a reference is found by the scan of creation events
    ref = api.app.open_contract("REF-1", "garoon", "standard", 10, {"name": "Ref K.K."}, jst(2026, 6, 20),
                                cycle=BillingCycle.MONTHLY, reference="PO-7").aggregate_id
    assert f"/ui/contracts/{ref}" in client.get("/ui/", params={"q": "REF-1"}).text


def test_as_of_figures_match_the_hand_computed_values(api: Harness) -> None:
    made = make_history(api_call(api))
    client = browser_client(api, "auditor")
    for as_of, (invoices, outstanding) in EXPECTED.items():
        r = client.get(f"/ui/contracts/{made.contract_id}", params={"as_of": as_of})
        assert r.status_code == 200, r.text
        assert invoice_figures(r.text) == invoices, as_of
        assert total_outstanding(r.text) == outstanding, as_of
    page = client.get(f"/ui/contracts/{made.contract_id}").text  # today = the service clock's date
    assert f'value="{TODAY}"' in page
    assert invoice_figures(page) == EXPECTED[TODAY][0]
    before = client.get(f"/ui/contracts/{made.contract_id}", params={"as_of": "2026-03-01"}).text
    assert 'id="not-yet"' in before and "2026-03-02" in before
    trial = client.get(f"/ui/contracts/{made.contract_id}", params={"as_of": "2026-03-05"}).text
    assert 'id="state">trial<' in trial


def test_the_fold_agrees_with_the_read_side(api: Harness) -> None:
    """Current view: the page's invoices and deadlines are the read models' (same rules)."""
    made = make_history(api_call(api))
    cid = uuid.UUID(made.contract_id)
    app: Any = api.client.app
    ctx = app.state.ctx
    ctx.read_models.wait_for(api.event_count(), 10)
    history = fold(cid, api.app.contract_events(cid), None, api.app.policy, False, date(2026, 6, 20))
    read = ctx.read_models.invoices(cid, interest_on=date(2026, 6, 20))
    assert [(i.invoice.period, i.invoice.total, i.outstanding, i.late_interest) for i in history.invoices] == \
        [(i["period"], i["total"], i["outstanding"], i["late_interest"]) for i in read]
    deadlines = [(d.due_on, d.kind) for d in ctx.read_models.deadlines_until(date(2030, 1, 1)) if d.aggregate_id == cid]
    assert [(d.due_on, d.kind) for d in history.deadlines] == sorted(deadlines)
    assert history.rows[0].event == "Opened" and history.rows[0].business_date == date(2026, 3, 2)
    assert [r.business_date for r in history.rows] == sorted(r.business_date for r in history.rows)


def test_timeline_lists_events_with_dates_article_and_state_after(api: Harness) -> None:
    made = make_history(api_call(api))
    html = browser_client(api, "auditor").get(f"/ui/contracts/{made.contract_id}").text
    rows = re.findall(r"<tr>\s*<td class=\"num muted\">(\d+)</td><td>([\d-]+)</td>.*?<td class=\"strong\">(\w+)</td>"
                      r"<td>([^<]*)</td><td class=\"nowrap\">([^<]*)</td>.*?<span class=\"state (\w+)\">", html, re.S)
    events = [(int(v), d, e, a, art, s) for v, d, e, a, art, s in rows]
    assert [e[2] for e in events][:4] == ["Opened", "TrialStarted", "Applied", "Approved"]
    assert ("2026-04-01", "ServicePeriodStarted", "Art. 8.1", "active") in [(e[1], e[2], e[4], e[5]) for e in events]
    payment = next(e for e in events if e[2] == "PaymentReceived")
    assert payment[1] == "2026-06-15" and payment[4] == "Art. 9.3"
    assert re.fullmatch(r"billing-[0-9a-f]{6} \(billing\)", payment[3])  # section 13: the key that paid
    assert re.fullmatch(r"billing-[0-9a-f]{6} \(billing\)", events[0][3])
    assert "24,200 yen paid on 2026-06-15 for invoice 2026-04" in html
    assert 'class="badge ok">intact<' in html  # hash chain verified


def test_auditor_sees_no_personal_data_operator_does(api: Harness) -> None:
    made = make_history(api_call(api))
    auditor = browser_client(api, "auditor").get(f"/ui/contracts/{made.contract_id}").text
    operator = browser_client(api, "operator").get(f"/ui/contracts/{made.contract_id}").text
    for value in CONTRACTOR.values():
        assert value not in auditor
    assert 'id="contractor" class="">redacted<' in auditor
    assert CONTRACTOR["name"] in operator and CONTRACTOR["contact_email"] in operator


def test_everything_is_escaped(api: Harness) -> None:
    evil = "<script>alert(1)</script>"
    customer = "<b>X</b>&amp;"
    made = make_history(api_call(api), customer=customer, contractor={"name": f"{evil} K.K.", "address": evil})
    client = browser_client(api, "operator")
    pages = [client.get(f"/ui/contracts/{made.contract_id}").text,
             client.get(f"/ui/contracts/{made.contract_id}", params={"as_of": "2026-04-15"}).text,
             client.get("/ui/", params={"q": customer}).text,
             client.get("/ui/", params={"q": evil}).text]
    for html in pages:
        assert "<script" not in html and "<b>X" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; K.K." in pages[0]
    assert "&lt;b&gt;X&lt;/b&gt;&amp;amp;" in pages[0]
    assert "&lt;b&gt;X&lt;/b&gt;&amp;amp;" in pages[2] and f"/ui/contracts/{made.contract_id}" in pages[2]


def test_erased_personal_data_shows_as_erased(api: Harness) -> None:
    app = api.app
    person = {"name": "Erasable Trading K.K.", "address": "9-9 Forget-cho", "contact_email": "gone@example.invalid"}
    cid = app.open_contract("ERASE-1", "kintone", "light", 5, person, jst(2026, 3, 2),
                            cycle=BillingCycle.MONTHLY).aggregate_id
    app.approve(cid, jst(2026, 3, 10))
    app.advance(cid, Month(2026, 4))
    app.notice_termination(cid, None, jst(2026, 4, 10))
    app.advance(cid, Month(2026, 6))
    # everything paid 2026-06-10, then the interest invoice April's late payment brings (rule book 6)
    while unpaid := [i for i in app.get_contract(cid).ledger.invoices.values() if i.outstanding > 0]:
        for invoice in unpaid:
            app.record_payment(cid, invoice.invoice_id, invoice.outstanding, date(2026, 6, 10), jst(2026, 6, 10))
    # rule book 10: ended 2026-05-31, last invoice 2026-06-10 (fiscal year to 2027-03-31, filed by
    # 2027-05-31, + 7 years): erased 2034-06-01
    app.erase_contractor_data(cid, date(2034, 6, 1))
    for role in ("operator", "auditor"):
        client = browser_client(api, role)
        for params in ({}, {"as_of": "2026-04-15"}):
            html = client.get(f"/ui/contracts/{cid}", params=params).text
            assert 'id="contractor" class="erased">erased<' in html, (role, params)
            assert "contractor erased" in html  # the Applied event in the timeline
            for value in person.values():
                assert value not in html
        html = client.get(f"/ui/contracts/{cid}").text
        assert "ContractorDataErased" in html and "personal data erased on 2034-06-01" in html
        assert "ERASE-1" in client.get("/ui/", params={"q": "ERASE-1"}).text


def test_bad_dates_and_unknown_contracts(api: Harness) -> None:
    client = browser_client(api, "auditor")
    assert client.get(f"/ui/contracts/{uuid.uuid4()}").status_code == 404
    assert client.get("/ui/contracts/not-a-uuid").status_code == 404
    made = make_history(api_call(api))
    r = client.get(f"/ui/contracts/{made.contract_id}", params={"as_of": "2026-13-01"})
    assert r.status_code == 400 and "YYYY-MM-DD" in r.text and "2026-13-01" not in r.text
    r = client.get(f"/ui/contracts/{made.contract_id}", params={"as_of": "2026-09-01"})
    assert r.status_code == 200 and "interest is projected" in r.text
    # as of 09-01: May (due 06-30) late 07-01..08-31 = 62 days, June (due 07-31) 08-01..08-31 = 31 days
    figures = invoice_figures(r.text)
    assert figures["2026-04"] == (APRIL, 0, 134)
    assert figures["2026-05"] == (13_200, 13_200, 13_200 * 145 * 62 // 365_000)  # 325
    assert figures["2026-06"] == (13_200, 13_200, 13_200 * 145 * 31 // 365_000)  # 162


def test_a_broken_hash_chain_raises_a_page_wide_alarm(api: Harness, tmp_path: Path) -> None:
    """Spec 10: a tampered history is an alarm across every page of that contract and the
    dashboard, not a badge; an intact contract's page has none."""
    made = make_history(api_call(api))
    r = api_call(api)("POST", "/v1/contracts", {"customer_number": "C-INTACT-1", "service": "kintone",
                                                 "grade": "standard", "users": 5, "contractor": CONTRACTOR,
                                                 "trial": True}, "billing")
    assert r.status_code == 201, r.text
    intact = r.json()["contract_id"]
    cid = uuid.UUID(made.contract_id)
    client = browser_client(api, "auditor")
    assert 'id="chain-alarm"' not in client.get("/ui/").text  # nothing tampered yet
    with sqlite3.connect(tmp_path / "contracts.sqlite") as conn:  # the harness's store file
        conn.execute("UPDATE event_hashes SET hash = ? WHERE originator_id = ? AND originator_version = ?",
                     (bytes(32), cid.hex, 5))
    for path in (f"/ui/contracts/{cid}", f"/ui/contracts/{cid}?as_of=2026-04-01"):
        html = client.get(path).text
        assert 'class="badge bad">broken<' in html and "version 5:" in html
        alarm = re.search(r'<div class="alarm" role="alert" id="chain-alarm">(.*?)</div>', html, re.S)
        assert alarm is not None and alarm.start() < html.index("<main>")  # above the page, not in it
        assert "hash chain is broken" in alarm.group(1) and "1 broken link;" in alarm.group(1)
    dashboard = client.get("/ui/").text
    assert 'id="chain-alarm"' in dashboard and f"contract {cid} version 5:" in dashboard
    assert 'id="chain-alarm"' not in client.get(f"/ui/contracts/{intact}").text


def test_sla_claims_show_eligibility_reason_range_and_decision(api: Harness) -> None:
    made = make_history(api_call(api))
    cid = uuid.UUID(made.contract_id)
    app = api.app
    evidence = "Ticket 77 from Ichiro Sample: down for two days"
    network = app.record_outage("kintone", jst(2026, 6, 16, 9), jst(2026, 6, 18, 11), OutageCause.PROVIDER_NETWORK,
                                jst(2026, 6, 18, 12)).aggregate_id
    upkeep = app.record_outage("kintone", jst(2026, 6, 18, 13), jst(2026, 6, 19, 20),
                               OutageCause.SCHEDULED_MAINTENANCE, jst(2026, 6, 19, 21)).aggregate_id
    app.claim_sla(cid, network, jst(2026, 6, 20), True, True, evidence)
    app.claim_sla(cid, upkeep, jst(2026, 6, 20, 11), True, True, "")
    app.decide_claim(cid, app.claim_id(cid, network), None, None, jst(2026, 6, 20, 12))
    ctx: Any = api.client.app
    ctx.state.ctx.read_models.wait_for(api.event_count(), 10)
    read = {c["claim_id"]: c for c in ctx.state.ctx.read_models.claims(cid)}
    auditor = browser_client(api, "auditor").get(f"/ui/contracts/{cid}").text
    operator = browser_client(api, "operator").get(f"/ui/contracts/{cid}").text
    table = re.search(r'<table class="list" id="claims">(.*?)</table>', auditor, re.S).group(1)  # type: ignore[union-attr]
    rows = {row.split("</td>")[0].rsplit(">", 1)[1]: row
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)}
    assert len(rows) == 2
    granted = read[str(app.claim_id(cid, network))]
    row = rows[granted["claim_id"][:8]]
    assert granted["eligible"] and granted["credit_days"] == 2
    assert '"badge ok">eligible<' in row and f"{granted['minimum']:,} – {granted['maximum']:,}" in row
    decision = re.sub(r"<[^>]+>", "", row)  # the text a reader sees
    assert "granted: fee reduction" in decision and "granted: granted" not in decision and "(50 h)" in row
    refused = read[str(app.claim_id(cid, upkeep))]
    row = rows[refused["claim_id"][:8]]
    assert not refused["eligible"]
    assert "not eligible" in row and unescape(refused["reason"]) in unescape(row) and "pending" in row
    assert evidence not in auditor and "evidence redacted" in auditor
    assert evidence in operator
