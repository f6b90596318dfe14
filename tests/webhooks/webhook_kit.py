"""The application and its webhook parts for the webhook tests, with contract scenarios whose
values the rule book fixes (kintone standard x 10, monthly, sample catalog)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from app_kit import CONTRACTOR, customer, jst

from application.notifications.catalog import TYPE_NAMES
from application.notifications.ports import Endpoint
from domain.calendar import Month
from domain.contract import BillingCycle
from infrastructure.bootstrap import Services, WebhookParts, build_services, build_webhooks
from infrastructure.settings import Settings

DOCUMENT_TYPES = ("invoice.issued", "credit_note.issued")
FAST = {  # POLICY values shrunk so a test sees back-off, give-up and disabling within seconds
    "webhook_first_retry_seconds": 0.05,
    "webhook_max_retry_interval_seconds": 0.4,
    "webhook_timeout_seconds": 1.0,
    "webhook_lease_seconds": 2.0,
    "webhook_concurrency": 4,
}


@dataclass
class Hub:
    services: Services
    parts: WebhookParts

    @property
    def app(self) -> Any:
        return self.services.app

    @property
    def store(self) -> Any:
        return self.parts.webhooks.store

    def register(self, url: str, types: list[str] | None = None, personal: bool = False) -> tuple[Endpoint, str]:
        """``types`` default: every type but the issued documents (``invoice.issued``, ``credit_note.issued``:
        every month start issues one; their own test subscribes to them), so the delivery tests see the notices."""
        default = [t for t in TYPE_NAMES if t not in DOCUMENT_TYPES]
        return self.parts.webhooks.admin.register(url, types or default, datetime.now(UTC), "test-operator",
                                                  personal_data=personal)

    def pump(self, rounds: int = 1) -> None:
        """Derive everything recorded and deliver what is due, in this thread."""
        for _ in range(rounds):
            self.parts.webhooks.deriver.catch_up()
            while self.parts.deliverer.deliver_due(50):
                pass

    def close(self) -> None:
        self.parts.stop()
        self.services.close()


def make_hub(tmp_path: Path, env: dict[str, str] | None = None, **settings: Any) -> Hub:
    values = {**FAST, **settings}
    s = Settings(sqlite_path=tmp_path / "contracts.sqlite", database_url=None, **values)
    services = build_services(s, env)
    parts = build_webhooks(services, in_process=True, poll_interval=0.02)
    return Hub(services, parts)


def overdue_contract(app: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """A monthly kintone standard x 10 contract approved 2026-03-24, run to June 2026; its April
    invoice (12,000 campaign fee + 10,000 initial fee + 10 % tax = 24,200 yen, due 2026-05-31,
    Art. 9) marked overdue on 2026-06-01 (spec 7)."""
    cid = app.open_contract(customer(), "kintone", "standard", 10, CONTRACTOR, jst(2026, 3, 24),
                            cycle=BillingCycle.MONTHLY).aggregate_id
    app.approve(cid, jst(2026, 3, 24))
    app.advance(cid, Month(2026, 6))
    april = next(i for i in app.get_contract(cid).ledger.invoices.values() if str(i.month) == "2026-04")
    app.mark_overdue(cid, april.invoice_id, date(2026, 6, 1))
    return cid, april.invoice_id
