"""Rule book section 13 over HTTP: every event names who caused it, by the API key's name and role,
in the contract's events, the global feed (auditors too: key names are not personal data) and
the audit export."""

from __future__ import annotations

import uuid

from api_harness import Harness

from application.audit import export_records


def test_section_13_events_name_the_api_key_and_role_that_caused_them(any_api: Harness) -> None:
    api = any_api
    cid = api.concluded("C-ACT", approver="operator")  # kintone standard, 10 users, monthly

    events = api.get(f"/v1/contracts/{cid}/events", "auditor").json()["events"]
    actors = [(e["type"], e["actor"]["kind"], e["actor"]["role"]) for e in events]
    assert actors == [("Opened", "api_key", "billing"), ("Applied", "api_key", "billing"),
                      ("Approved", "api_key", "operator")]
    names = {e["actor"]["name"] for e in events}
    assert len(names) == 2 and all(n.startswith(("billing-", "operator-")) for n in names)
    assert all("actor" not in e["data"] for e in events)  # one place: the top-level field

    feed = api.get("/v1/events", "auditor", params={"after": 0}).json()["events"]
    assert [e["actor"] for e in feed if e["aggregate_id"] == cid] == [e["actor"] for e in events]

    exported = [rec["actor"] for rec in export_records(api.app, contract_id=uuid.UUID(cid))]
    assert exported == [e["actor"] for e in events]
