"""Spec 8 over HTTP: the same outage sent with +09:00 and with Z is 409 the second time, naming
the rule and the outage already recorded (issue 14 item 3)."""

from __future__ import annotations

from api_harness import Harness, jst

OUTAGE = {"service": "kintone", "started_at": "2026-03-10T09:00:00+09:00", "ended_at": "2026-03-12T11:00:00+09:00",
          "cause": "provider_network"}


def test_spec_8_an_overlapping_outage_is_409_with_the_recorded_outage_id(any_api: Harness) -> None:
    api = any_api
    api.set_clock(jst(2026, 3, 20))
    first = api.post("/v1/outages", OUTAGE)
    assert first.status_code == 201, first.text
    events = api.event_count()
    for again in ({**OUTAGE, "started_at": "2026-03-10T00:00:00Z", "ended_at": "2026-03-12T02:00:00Z"},
                  {**OUTAGE, "started_at": "2026-03-12T10:00:00+09:00", "ended_at": "2026-03-12T12:00:00+09:00",
                   "cause": "scheduled_maintenance"}):
        r = api.post("/v1/outages", again)
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json", r.text
        body = r.json()
        assert body["type"] == "urn:contracts:problem:rule-violation" and body["article"] == "Art. 20"
        assert body["existing_outage_id"] == first.json()["outage_id"]
    assert api.event_count() == events
    after = api.post("/v1/outages", {**OUTAGE, "started_at": "2026-03-12T02:00:00Z",
                                     "ended_at": "2026-03-12T05:00:00Z"})
    assert after.status_code == 201, after.text
