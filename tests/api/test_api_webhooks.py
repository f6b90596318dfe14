"""Spec 12 over HTTP: webhook endpoints (operator), the delivery log and redelivery, the notices
on a contract's read (Art. 9.5, 18, 28), and the announcements and objections (spec 9)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from api_harness import Harness, jst

from api import resources

sys.path.insert(0, str(Path(__file__).parents[1] / "webhooks"))
from docs_receiver import documented_verify  # noqa: E402
from receivers import Receiver, always, wait_until  # noqa: E402

BASE = "/v1/webhook-endpoints"


def _receiver() -> Receiver:
    return Receiver(always(200)).start()


def _register(api: Harness, url: str, types: list[str] | None = None, **headers: str) -> dict:
    r = api.post(BASE, {"url": url, "event_types": types or ["*"], "description": "billing"}, role="operator",
                 **headers)
    assert r.status_code == 201, r.text
    return r.json()


def _pump(api: Harness) -> None:
    assert api.hooks is not None
    api.hooks.webhooks.deriver.catch_up()
    while api.hooks.deliverer.deliver_due(50):
        pass


def test_spec12_endpoints_are_operator_only_and_the_secret_is_shown_once(api: Harness) -> None:
    assert api.post(BASE, {"url": "http://127.0.0.1:9/x", "event_types": ["*"]}).status_code == 403
    assert api.get(BASE, role="auditor").status_code == 403
    created = _register(api, "http://127.0.0.1:9/hook", ["invoice.overdue"], Idempotency_Key="reg-1")
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    eid = created["endpoint_id"]
    listed = api.get(BASE, role="operator").json()["endpoints"]
    assert [e["endpoint_id"] for e in listed] == [eid] and "secret" not in listed[0]
    shown = api.get(f"{BASE}/{eid}", role="operator").json()
    assert "secret" not in shown and shown["log"][0]["action"] == "registered"
    assert shown["log"][0]["at"].endswith("Z") and shown["created_at"].endswith("Z")  # issue 19: UTC Z
    resources.WebhookEndpointDetail.model_validate(shown, strict=True)  # the documented models (issue 19)
    resources.WebhookEndpoints.model_validate({"endpoints": listed}, strict=True)
    # a replay of the registration does not show the secret again, nor create a second endpoint
    replay = api.post(BASE, {"url": "http://127.0.0.1:9/hook", "event_types": ["invoice.overdue"],
                             "description": "billing"}, role="operator", Idempotency_Key="reg-1")
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["secret"] is None and replay.json()["endpoint_id"] == eid
    assert len(api.get(BASE, role="operator").json()["endpoints"]) == 1
    assert created["secret"] not in "".join(str(r) for r in api.store.list_keys())


def test_spec12_bad_endpoint_input_is_422_naming_the_field(api: Harness) -> None:
    for body, field in (({"url": "ftp://x", "event_types": ["*"]}, "url"),
                        ({"url": "http://127.0.0.1/x", "event_types": ["invoice.unknown"]}, "event_types"),
                        ({"url": "http://user:pw@127.0.0.1/x", "event_types": ["*"]}, "url"),
                        ({"url": "http://127.0.0.1/x", "event_types": []}, "event_types")):
        r = api.post(BASE, body, role="operator")
        assert r.status_code == 422, r.text
        assert field in r.text
        assert "user:pw" not in r.text  # submitted values are not echoed


def test_spec12_update_disable_enable_roll_delete(api: Harness) -> None:
    eid = _register(api, "http://127.0.0.1:9/hook")["endpoint_id"]
    r = api.client.patch(f"{BASE}/{eid}", json={"event_types": ["payment.received"], "personal_data": True},
                         headers=api.headers("operator"))
    assert r.status_code == 200 and r.json()["event_types"] == ["payment.received"] and r.json()["personal_data"]
    assert api.post(f"{BASE}/{eid}/disable", {"reason": "maintenance"}, role="operator").json()["status"] == "disabled"
    assert api.post(f"{BASE}/{eid}/enable", role="operator").json()["status"] == "active"
    rolled = api.post(f"{BASE}/{eid}/roll-secret", {"overlap_seconds": 3600}, role="operator").json()
    assert rolled["secret"].startswith("whsec_") and rolled["previous_secret_expires_at"]
    assert api.post(f"{BASE}/{eid}/roll-secret", {"overlap_seconds": 8 * 86400}, role="operator").status_code == 422
    actions = [e["action"] for e in api.get(f"{BASE}/{eid}", role="operator").json()["log"]]
    assert actions == ["registered", "updated", "disabled", "enabled", "secret rolled"]
    assert api.client.delete(f"{BASE}/{eid}", headers=api.headers("operator")).status_code == 204
    assert api.get(f"{BASE}/{eid}", role="operator").status_code == 404
    assert api.get(BASE, role="operator").json()["endpoints"] == []


def test_spec12_delivery_log_and_redelivery_over_http(api: Harness) -> None:
    r = _receiver()
    try:
        created = _register(api, r.url, ["contract.terminated"])
        eid = created["endpoint_id"]
        cid = api.concluded("CUST-WH1")
        ended = api.post(f"/v1/contracts/{cid}/terminate", {"article": "Art. 23.1.1"}, role="operator")
        assert ended.status_code == 200
        _pump(api)
        log = api.get(f"{BASE}/{eid}/deliveries", role="operator").json()
        [d] = log["deliveries"]
        assert d["type"] == "contract.terminated" and d["status"] == "delivered" and d["attempts"] == 1
        one = api.get(f"{BASE}/{eid}/deliveries/{d['notification_id']}", role="operator").json()
        resources.Deliveries.model_validate(log, strict=True)  # the documented models (issue 19)
        resources.Delivery.model_validate(one, strict=True)
        assert one["history"][0]["status_code"] == 200 and one["history"][0]["latency_ms"] >= 0
        assert api.post(f"{BASE}/{eid}/redeliver", {"notification_id": d["notification_id"]},
                        role="operator").json()["queued"] == 1
        _pump(api)
        assert [b["id"] for b in r.bodies()] == [d["notification_id"]] * 2
        assert documented_verify()(r.received[0].headers["contracts-signature"], r.received[0].body,
                                   created["secret"], time.time())
        both = api.post(f"{BASE}/{eid}/redeliver", {"notification_id": d["notification_id"], "from_position": 1,
                                                   "to_position": 5}, role="operator")
        assert both.status_code == 422
    finally:
        r.stop()


def test_art18_art28_operators_announce_customers_object_and_the_contract_shows_its_notices(api: Harness) -> None:
    r = _receiver()
    try:
        _register(api, r.url)
        cid = api.concluded("CUST-WH2")  # 2026-03-02 (sandbox clock): concluded, service from April
        # Art. 18: at least 3 calendar months ahead: 2026-06-01 is too early, 2026-06-02 is the earliest
        too_early = api.post("/v1/service-discontinuations", {"service": "kintone", "discontinue_on": "2026-06-01"},
                             role="operator")
        assert too_early.status_code == 409 and too_early.json()["article"] == "Art. 18"
        ok = api.post("/v1/service-discontinuations", {"service": "kintone", "discontinue_on": "2026-06-02"},
                      role="operator")
        assert ok.status_code == 201, ok.text
        assert api.post("/v1/service-discontinuations", {"service": "kintone", "discontinue_on": "2026-06-02"},
                        role="billing").status_code == 403
        terms = api.post("/v1/terms-changes", {"version": "2026-05", "effective_on": "2026-05-01",
                                               "summary": "liability clause"}, role="operator")
        assert terms.status_code == 201, terms.text
        assert api.post("/v1/terms-changes", {"version": "2026-04", "effective_on": "2026-03-02",
                                              "summary": "x"}, role="operator").json()["article"] == "Art. 28"
        _pump(api)
        notices = api.get(f"/v1/contracts/{cid}").json()["notices"]
        assert [(n["article"], n["type"], n["delivered"]) for n in notices] == [
            ("Art. 18", "service.discontinuation_announced", True), ("Art. 28", "terms.change_announced", True)]
        api.set_clock(jst(2026, 4, 10))
        objected = api.post(f"/v1/contracts/{cid}/terms-objection", {"version": "2026-05"})
        assert objected.status_code == 200, objected.text
        assert objected.json()["state"] == "terminated" and objected.json()["ended_on"] == "2026-04-10"
        assert api.post(f"/v1/contracts/{cid}/terms-objection", {"version": "2026-05"}).status_code == 409
        _pump(api)
        assert wait_until(lambda: "contract.terminated" in [b["type"] for b in r.bodies()], 2)
        ended = next(b for b in r.bodies() if b["type"] == "contract.terminated")
        assert ended["data"]["reason"] == "terms_change" and ended["data"]["article"] == "Art. 28"
    finally:
        r.stop()


def test_spec12_webhook_types_are_listed_for_every_role(api: Harness) -> None:
    types = api.get("/v1/webhook-types", role="auditor").json()["types"]
    resources.WebhookTypes.model_validate({"types": types}, strict=True)  # the documented model (issue 19)
    names = [t["type"] for t in types]
    assert names == sorted(names) and len(names) == len(set(names))
    assert {"invoice.overdue", "payment.received", "contract.suspension_noticed", "contract.suspension_lifted",
            "contract.terminated", "service.discontinuation_announced", "terms.change_announced",
            "sla.claim_decided", "stored_data.deletion_due"} <= set(names)
    articles = {t["type"]: t["article"] for t in types if t["article"]}
    assert articles == {"contract.suspension_noticed": "Art. 9.5", "service.discontinuation_announced": "Art. 18",
                        "terms.change_announced": "Art. 28",
                        "contract.suspension_stop_moved": "Art. 9.5"}  # the new stop date is told too


def test_art9_5_the_contract_page_shows_when_its_notices_were_delivered(api: Harness) -> None:
    from fastapi.testclient import TestClient

    r = _receiver()
    try:
        _register(api, r.url, ["terms.change_announced"])
        cid = api.concluded("CUST-WH3")
        assert api.post("/v1/terms-changes", {"version": "2026-06", "effective_on": "2026-06-01",
                                              "summary": "x"}, role="operator").status_code == 201
        _pump(api)
        page = TestClient(api.client.app, raise_server_exceptions=False)
        assert page.post("/ui/login", data={"key": api.keys["auditor"]}, follow_redirects=False).status_code == 303
        html = page.get(f"/ui/contracts/{cid}").text
        assert 'id="notices"' in html and "Art. 28" in html and "terms.change_announced" in html
        assert ">delivered<" in html
    finally:
        r.stop()
