"""Test harness for the HTTP API: one store (SQLite file or PostgreSQL schema), the app, a key
per role, and a TestClient with small helpers."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's TestClient warns about httpx versions
    from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import ROLES
from application.api_keys import create_key
from application.clock import Clock, SystemClock
from application.ports import ApiStore
from domain.calendar import JST
from infrastructure.bootstrap import (
    Services,
    WebhookParts,
    build_api_store,
    build_read_models,
    build_services,
    build_webhooks,
)
from infrastructure.clock_store import DatabaseClock
from infrastructure.settings import Settings

CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
              "contact_name": "Hanako Sample", "contact_email": "hanako@example.invalid"}


def jst(y: int, m: int, d: int, h: int = 10, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=JST).astimezone(UTC)


def iso(instant: datetime) -> str:
    return instant.isoformat()


def build_read_side(services: Services, clock: Clock) -> tuple[Any, Callable[[], None]]:
    """The read models with their runner in a thread of the test process (SQLite and PostgreSQL)."""
    read_models = build_read_models(services, clock=clock, start_runner=True, poll_interval=0.05)
    return read_models, read_models.stop


@dataclass
class Harness:
    services: Services
    store: ApiStore
    clock: Clock
    client: TestClient
    keys: dict[str, str]
    stop: Callable[[], None]
    mode: str
    log: list[Any] = field(default_factory=list)
    hooks: WebhookParts | None = None
    read_models: Any = None  # what the API reads deadlines from (a scheduler can use them too)

    @property
    def app(self) -> Any:
        return self.services.app

    def headers(self, role: str | None = "billing", **extra: str) -> dict[str, str]:
        h = {} if role is None else {"X-API-Key": self.keys[role]}
        h.update({k.replace("_", "-"): v for k, v in extra.items()})
        return h

    def get(self, path: str, role: str | None = "billing", params: dict[str, Any] | None = None,
            **headers: str) -> Any:
        return self.client.get(path, params=params, headers=self.headers(role, **headers))

    def post(self, path: str, body: Any = None, role: str | None = "billing", **headers: str) -> Any:
        if body is None:
            return self.client.post(path, headers=self.headers(role, **headers))
        return self.client.post(path, json=body, headers=self.headers(role, **headers))

    def put(self, path: str, body: Any, role: str | None = "billing", **headers: str) -> Any:
        return self.client.put(path, json=body, headers=self.headers(role, **headers))

    def set_clock(self, instant: datetime) -> None:
        r = self.put("/v1/clock", {"now": iso(instant)})
        assert r.status_code == 200, r.text

    def event_count(self) -> int:
        """Business events stored (command receipts, which only prove a key was applied, excluded)."""
        count, start = 0, 1
        while batch := self.app.recorder.select_notifications(start=start, limit=1000):
            count += sum(1 for n in batch if not n.topic.endswith("CommandReceipt.CommandApplied"))
            start = batch[-1].id + 1
        return count

    # -- scripted steps
    def apply(self, customer: str = "CUST-1", service: str = "kintone", grade: str = "standard", users: int = 10,
              cycle: str | None = "monthly", trial: bool = False, **headers: str) -> str:
        body: dict[str, Any] = {"customer_number": customer, "service": service, "grade": grade, "users": users,
                                "contractor": CONTRACTOR, "trial": trial}
        if cycle is not None:
            body["billing_cycle"] = cycle
        r = self.post("/v1/contracts", body, **headers)
        assert r.status_code == 201, r.text
        return str(r.json()["contract_id"])

    def concluded(self, customer: str = "CUST-1", approver: str = "billing", **kwargs: Any) -> str:
        cid = self.apply(customer, **kwargs)
        r = self.post(f"/v1/contracts/{cid}/approve", role=approver)
        assert r.status_code == 200, r.text
        return cid

    def advance(self, cid: str, month: str | None = None) -> Any:
        r = self.post(f"/v1/contracts/{cid}/advance", {"month": month} if month else None, role="operator")
        assert r.status_code == 200, r.text
        return r.json()

    def invoices(self, cid: str, role: str = "billing") -> list[dict[str, Any]]:
        r = self.get(f"/v1/contracts/{cid}/invoices", role)
        assert r.status_code == 200, r.text
        return list(r.json()["invoices"])

    def close(self) -> None:
        self.client.close()
        if self.hooks is not None:
            self.hooks.stop()
        self.stop()
        self.store.close()
        self.services.close()


def make_harness(tmp_path: Path, env: dict[str, str] | None = None, *, mode: str = "sandbox",
                 start: datetime | None = None, database_url: str | None = None) -> Harness:
    """The API over SQLite at ``tmp_path/contracts.sqlite``, or PostgreSQL at ``database_url``; either
    way migrated by ``infrastructure.schema.migrate`` first, as a served process is. ``env`` (library
    persistence settings) replaces them and skips the migrations (tests of the parts alone)."""
    settings = Settings(sqlite_path=tmp_path / "contracts.sqlite", database_url=database_url,  # type: ignore[call-arg]
                        mode=mode)
    services = build_services(settings, env)
    store = build_api_store(services.app.env)
    store.setup()
    clock: Clock
    if mode == "sandbox":
        db_clock = DatabaseClock(store)
        db_clock.set(start or jst(2026, 3, 2))
        clock = db_clock
    else:
        clock = SystemClock()
    read_models, stop = build_read_side(services, clock)
    hooks = build_webhooks(services, in_process=False)  # the worker is driven by the webhook tests
    app = create_app(services, read_models, clock, store, mode=mode, webhooks=hooks.webhooks,
                     webhook_worker=hooks.worker)
    keys = {role: create_key(store, role, f"{role}-{uuid.uuid4().hex[:6]}", datetime.now(UTC)) for role in ROLES}
    client = TestClient(app, raise_server_exceptions=False)
    return Harness(services, store, clock, client, keys, stop, mode, hooks=hooks, read_models=read_models)

