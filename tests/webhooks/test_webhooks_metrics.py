"""Issue 20: the webhook worker counts its delivery outcomes (``contracts_webhook_deliveries_total``)."""

from __future__ import annotations

from prometheus_client import REGISTRY
from receivers import fails_then_recovers, wait_until
from webhook_kit import overdue_contract


def outcomes() -> dict[str, float]:
    return {o: REGISTRY.get_sample_value("contracts_webhook_deliveries_total", {"outcome": o}) or 0.0
            for o in ("delivered", "not_delivered", "error")}


def test_delivery_outcomes_counted_three_failures_then_one_delivery(hub, receiver):
    r = receiver(fails_then_recovers(3, 503))
    hub.register(r.url)
    before = outcomes()
    overdue_contract(hub.app)
    hub.parts.start()
    assert wait_until(lambda: outcomes()["delivered"] == before["delivered"] + 1, 15)
    after = outcomes()
    assert after["not_delivered"] == before["not_delivered"] + 3  # the three 503s
    assert after["error"] == before["error"]
