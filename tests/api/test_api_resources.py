"""Stripe-style conventions (issue 19): ``id`` and ``object`` on resources, one list envelope with a
bounded ``limit`` and a cursor, GET by id for outages and claims, the catalog read."""

from __future__ import annotations

from api_harness import Harness, iso, jst


def _three_april_invoices(api: Harness) -> list[str]:
    cids = [api.concluded(f"RES-{n}") for n in range(3)]
    api.set_clock(jst(2026, 4, 1, 9))
    for cid in cids:
        api.advance(cid)
    return cids


def test_the_month_invoices_are_paged_with_a_cursor_on_both_stores(any_api: Harness) -> None:
    api = any_api
    _three_april_invoices(api)
    first = api.get("/v1/invoices", params={"month": "2026-04", "limit": 2}).json()
    assert (first["object"], len(first["data"]), first["has_more"]) == ("list", 2, True)
    assert first["invoices"] == first["data"]  # the deprecated key carries the same page
    assert first["next_cursor"] == first["data"][-1]["id"]
    second = api.get("/v1/invoices", params={"month": "2026-04", "limit": 2,
                                             "starting_after": first["next_cursor"]}).json()
    assert (len(second["data"]), second["has_more"], second["next_cursor"]) == (1, False, None)
    ids = [i["id"] for i in first["data"] + second["data"]]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(i["object"] == "invoice" and i["id"] == i["invoice_id"] for i in first["data"])
    everything = api.get("/v1/invoices", params={"month": "2026-04"}).json()  # default limit 50
    assert [i["id"] for i in everything["data"]] == ids and everything["has_more"] is False
    assert api.get("/v1/invoices", params={"month": "2026-04", "limit": 501}).status_code == 422


def test_a_contracts_events_honour_limit_and_starting_after(api: Harness) -> None:
    cid = api.concluded("RES-E")  # Opened, Applied, Approved
    page = api.get(f"/v1/contracts/{cid}/events", params={"limit": 2}).json()
    assert [e["version"] for e in page["data"]] == [1, 2] and page["has_more"] and page["next_cursor"] == "2"
    rest = api.get(f"/v1/contracts/{cid}/events", params={"starting_after": 2}).json()
    assert [e["version"] for e in rest["data"]] == [3] and rest["has_more"] is False
    assert rest["events"] == rest["data"] and rest["data"][0]["object"] == "event"


def test_contract_and_invoice_resources_carry_id_and_object(api: Harness) -> None:
    cid = _three_april_invoices(api)[0]
    contract = api.get(f"/v1/contracts/{cid}").json()
    assert (contract["id"], contract["object"], contract["contract_id"]) == (cid, "contract", cid)
    invoices = api.get(f"/v1/contracts/{cid}/invoices").json()
    assert invoices["object"] == "list" and invoices["data"] == invoices["invoices"]
    assert invoices["data"][0]["object"] == "invoice"


def test_an_outage_and_a_claim_are_read_back_by_id(api: Harness) -> None:
    cid = api.concluded("RES-O")
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)
    api.set_clock(jst(2026, 4, 7))
    recorded = api.post("/v1/outages", {"service": "kintone", "started_at": iso(jst(2026, 4, 3)),
                                        "ended_at": iso(jst(2026, 4, 5)), "cause": "provider_network"})
    assert recorded.status_code == 201, recorded.text
    oid = recorded.json()["outage_id"]
    assert recorded.headers["location"] == f"/v1/outages/{oid}"
    outage = api.get(recorded.headers["location"], "auditor").json()
    # 48 hours from 04-03 10:00 JST: the 24-hour breach is on 04-04; 48 h = 2 credit days (Art. 20)
    assert (outage["object"], outage["id"], outage["breach_date"], outage["credit_days"]) == (
        "outage", oid, "2026-04-04", 2)
    claimed = api.post(f"/v1/contracts/{cid}/sla-claims", {"outage_id": oid, "proof_of_payment": True,
                                                           "proof_of_breach": True})
    assert claimed.status_code == 201, claimed.text
    claim_id = claimed.json()["claim_id"]
    claim = api.get(f"/v1/sla-claims/{claim_id}").json()
    assert (claim["object"], claim["id"], claim["contract_id"], claim["status"]) == (
        "sla_claim", claim_id, cid, "pending")
    assert api.get("/v1/sla-claims/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.get("/v1/outages/00000000-0000-0000-0000-000000000000").status_code == 404


def test_the_catalog_lists_services_grades_prices_and_the_tax_rate(api: Harness) -> None:
    catalog = api.get("/v1/catalog", "auditor").json()
    assert catalog["object"] == "catalog" and catalog["tax_rate"] == "0.10"  # POLICY default, rule book 1
    kintone = next(s for s in catalog["data"] if s["id"] == "kintone")
    standard = next(g for g in kintone["grades"] if g["grade"] == "standard")
    # the packaged sample catalog's kintone standard grade
    assert (standard["monthly_price"], standard["initial_fee"], standard["min_users"]) == (1500, 10000, 5)
    assert standard["campaign"] == {"monthly_price": 1200, "months": 3, "annual_price": 16000}


def test_the_deadlines_are_paged_with_a_cursor_on_both_stores(any_api: Harness) -> None:
    api = any_api
    # approved 2026-03-02: the first month is April, so each contract's next deadline is the
    # period start on 2026-04-01 (Art. 8.1), kind month_start, ref the month
    cids = sorted(api.concluded(f"DL-{n}") for n in range(3))
    first = api.get("/v1/deadlines", "auditor", params={"until": "2026-04-01", "limit": 2}).json()
    assert (first["object"], first["url"], first["until"], first["has_more"]) == (
        "list", "/v1/deadlines", "2026-04-01", True)
    assert [(d["due_on"], d["kind"], d["aggregate_id"], d["ref"]) for d in first["data"]] == [
        ("2026-04-01", "month_start", cid, "2026-04") for cid in cids[:2]]
    assert first["deadlines"] == first["data"]  # the deprecated key carries the same page
    second = api.get("/v1/deadlines", "auditor", params={"until": "2026-04-01", "limit": 2,
                                                         "starting_after": first["next_cursor"]}).json()
    assert [d["aggregate_id"] for d in second["data"]] == cids[2:]
    assert (second["has_more"], second["next_cursor"]) == (False, None)
    everything = api.get("/v1/deadlines", "auditor", params={"until": "2026-04-01"}).json()  # default 50
    assert [d["aggregate_id"] for d in everything["data"]] == cids and everything["has_more"] is False
    assert api.get("/v1/deadlines", params={"until": "2026-03-31"}).json()["data"] == []
    for bad in ("not-a-cursor", "W10", "WyJ4Il0"):  # text, base64 of [], base64 of ["x"]
        refused = api.get("/v1/deadlines", params={"until": "2026-04-01", "starting_after": bad})
        assert refused.status_code == 422 and refused.json()["field"] == "starting_after", refused.text
        assert bad not in refused.text  # never echoed
    assert api.get("/v1/deadlines", params={"until": "2026-04-01", "limit": 10_001}).status_code == 422
