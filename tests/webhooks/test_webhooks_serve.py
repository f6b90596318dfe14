"""End to end: ``contracts serve`` (embedded SQLite) runs the webhook worker in its process; an
operator registers an endpoint over HTTP, announces a terms change (Art. 28), and a real receiver
on 127.0.0.1 gets it, signed; the contract's read then shows the notice as delivered."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from docs_receiver import documented_verify
from receivers import Receiver, always, wait_until
from support.live_server import create_key, live_server, sandbox_env


def test_art28_serve_delivers_the_announcement_and_records_the_notice(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path / "served.sqlite")
    key = create_key(env, "operator", "ops")
    receiver = Receiver(always(200)).start()
    secret = ""
    try:
        with live_server(env, ready_seconds=40, stop_seconds=20) as server:
            base, headers = server.base, {"X-API-Key": key}
            assert httpx.put(f"{base}/v1/clock", json={"now": "2026-03-02T10:00:00+09:00"},
                             headers=headers).status_code == 200
            r = httpx.post(f"{base}/v1/webhook-endpoints", headers=headers,
                           json={"url": receiver.url, "event_types": ["terms.change_announced"]})
            assert r.status_code == 201, r.text
            secret = r.json()["secret"]
            r = httpx.post(f"{base}/v1/contracts", headers=headers, json={
                "customer_number": "S-1", "service": "kintone", "grade": "light", "users": 5,
                "contractor": {"name": "Served K.K."}, "billing_cycle": "monthly"})
            cid = r.json()["contract_id"]
            r = httpx.post(f"{base}/v1/terms-changes", headers=headers,
                           json={"version": "2026-05", "effective_on": "2026-05-01", "summary": "new clause"})
            assert r.status_code == 201, r.text
            assert wait_until(lambda: len(receiver.received) == 1, 20)
            got = receiver.received[0]
            assert got.json["type"] == "terms.change_announced" and got.json["data"]["effective_on"] == "2026-05-01"
            assert documented_verify()(got.headers["contracts-signature"], got.body, secret, time.time())
            assert wait_until(lambda: _notice_delivered(base, headers, cid), 10)
    finally:
        receiver.stop()
    assert secret and secret not in server.output and key not in server.output  # secrets never logged


def _notice_delivered(base: str, headers: dict[str, str], cid: str) -> bool:
    notices = httpx.get(f"{base}/v1/contracts/{cid}", headers=headers).json()["notices"]
    return [(n["article"], n["delivered"]) for n in notices] == [("Art. 28", True)]
