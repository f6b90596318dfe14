"""Rule book section 7 over HTTP (SQLite and PostgreSQL): transfers, the customer's account,
reversal, write-offs and the Art. 9.5 proviso; payer names are personal data (sealed when
stored, redacted for auditors). Figures by hand: garoon standard x 10 users = 11,000 yen a month
with tax; April's invoice due 2026-05-31."""

from __future__ import annotations

from typing import Any

from api_harness import Harness, jst

PAYER = "ｶ)ｻﾝﾌﾟﾙﾄﾚｰﾃﾞｨﾝｸﾞ"


def contract_with_two_invoices(api: Harness, customer: str = "C-TR") -> tuple[str, list[dict[str, Any]]]:
    cid = api.concluded(customer, service="garoon")  # standard, 10 users, monthly
    api.set_clock(jst(2026, 5, 1, 9))
    api.advance(cid, "2026-05")  # April and May
    return cid, api.invoices(cid)


def test_rule_7_a_transfer_pays_two_invoices_and_auditors_see_no_payer(any_api: Harness) -> None:
    api = any_api
    cid, invoices = contract_with_two_invoices(api)
    assert [i["total"] for i in invoices] == [11_000, 11_000]
    api.set_clock(jst(2026, 5, 20))
    body = {"customer_number": "C-TR", "payer_name": PAYER, "bank_reference": "B-77", "amount": 22_000,
            "value_date": "2026-05-20"}
    r = api.post("/v1/transfers", body)
    assert r.status_code == 201, r.text
    transfer = r.json()
    assert r.headers["location"] == f"/v1/transfers/{transfer['id']}"
    assert transfer["object"] == "transfer" and transfer["status"] == "applied" and transfer["credit"] == 0
    assert [a["amount"] for a in transfer["allocations"]] == [11_000, 11_000]
    assert [i["outstanding"] for i in api.invoices(cid)] == [0, 0]  # read-your-writes on the projection

    again = api.post("/v1/transfers", body)
    assert again.status_code == 409 and again.json()["article"] == "rule book 7"
    assert PAYER not in again.text and "B-77" not in again.text  # nothing submitted is echoed

    seen = api.get(f"/v1/transfers/{transfer['id']}", "auditor").json()
    withheld = {"object": "redacted", "redacted": True, "reason": "role"}  # rule book 10
    assert seen["payer_name"] == withheld and seen["bank_reference"] == withheld
    feed = api.get("/v1/events", "auditor", params={"after": 0, "limit": 500}).json()["events"]
    received = next(e for e in feed if e["aggregate_type"] == "Transfer" and e["type"] == "Received")
    assert received["data"]["payer_name"] == withheld
    assert api.get(f"/v1/transfers/{transfer['id']}", "billing").json()["payer_name"] == PAYER
    stored = b"".join(n.state for n in api.app.recorder.select_notifications(start=1, limit=1000))
    assert PAYER.encode() not in stored and b"B-77" not in stored  # sealed at rest (rule book 10)

    account = api.get("/v1/customers/C-TR/account", "auditor").json()
    assert account["contracts"] == [cid] and account["credit_balance"] == 0 and account["outstanding"] == 0


def test_rule_7_reverse_write_off_and_the_art_9_5_proviso_over_http(api: Harness) -> None:
    cid, invoices = contract_with_two_invoices(api, "C-TR2")
    api.set_clock(jst(2026, 5, 20))
    r = api.post("/v1/transfers", {"customer_number": "C-TR2", "payer_name": PAYER, "bank_reference": "B-78",
                                   "amount": 30_000, "value_date": "2026-05-20"})
    assert r.status_code == 201 and r.json()["credit"] == 8_000  # 30,000 - 22,000
    tid = r.json()["id"]
    api.set_clock(jst(2026, 5, 21))
    assert api.post(f"/v1/transfers/{tid}/reverse", {"reason": "bounced", "reversed_on": "2026-05-21"}).status_code \
        == 403  # operators only
    back = api.post(f"/v1/transfers/{tid}/reverse", {"reason": "bounced", "reversed_on": "2026-05-21"},
                    role="operator")
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "reversed"
    assert [i["outstanding"] for i in api.invoices(cid)] == [11_000, 11_000]
    assert api.get("/v1/customers/C-TR2/account").json()["credit_balance"] == 0

    missing = api.post(f"/v1/contracts/{cid}/write-offs", {"invoice_id": invoices[0]["invoice_id"], "amount": 500},
                       role="operator")
    assert missing.status_code == 422 and missing.json()["field"] == "reason"
    w = api.post(f"/v1/contracts/{cid}/write-offs", {"invoice_id": invoices[0]["invoice_id"], "amount": 500,
                                                      "reason": "uncollectible remainder"}, role="operator")
    assert w.status_code == 200, w.text
    assert w.json()["outstanding"] == 22_000 - 500
    stop = api.post(f"/v1/contracts/{cid}/suspension/stop-date", {"stop_on": "2026-07-31", "reason": "x"},
                    role="operator")
    assert stop.status_code == 409 and stop.json()["article"] == "Art. 9.5"  # no suspension to move
    events = api.get(f"/v1/contracts/{cid}/events", "auditor").json()["events"]
    written = next(e for e in events if e["type"] == "DebtWrittenOff")
    assert written["data"]["amount"] == 500 and written["actor"]["role"] == "operator"


def test_rule_7_unmatched_transfers_are_listed_for_operators(api: Harness) -> None:
    cid, _ = contract_with_two_invoices(api, "C-TR3")
    api.set_clock(jst(2026, 5, 20))
    r = api.post("/v1/transfers", {"payer_name": "ﾌﾒｲ", "bank_reference": "B-79", "amount": 11_000,
                                   "value_date": "2026-05-20"})
    assert r.status_code == 201 and r.json()["status"] == "unapplied"
    listed = api.get("/v1/transfers", "operator").json()
    assert listed["object"] == "list" and [t["id"] for t in listed["data"]] == [r.json()["id"]]
    assert api.get("/v1/transfers", "billing").status_code == 403
    applied = api.post(f"/v1/transfers/{r.json()['id']}/apply", {"customer_number": "C-TR3"}, role="operator")
    assert applied.status_code == 200, applied.text
    assert [i["outstanding"] for i in api.invoices(cid)] == [0, 11_000]  # oldest first
    assert api.get("/v1/transfers", "operator").json()["data"] == []  # the transfers table follows (applied)
