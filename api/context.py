"""What the routes need, built once by ``create_app`` and reached through ``Depends(context)``."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from fastapi import Request

from api.views import RenderedContracts
from application.clock import Clock
from application.ports import ApiReadModels, ApiStore
from application.service import ContractsApplication
from domain.calendar import jst_date
from infrastructure.bootstrap import Services

log = logging.getLogger("api")


@dataclass
class ApiContext:
    services: Services
    read_models: ApiReadModels
    clock: Clock
    store: ApiStore
    mode: str = "production"
    wait_timeout: float = 5.0  # read-your-writes bound (seconds)
    idempotency_retention: timedelta = timedelta(hours=24)
    idempotency_stale_after: timedelta = timedelta(minutes=2)
    last_purge: datetime | None = None  # of expired idempotency keys, by this process
    lock: threading.Lock = field(default_factory=threading.Lock)
    key_cache: Any = None  # api.auth.KeyCache of the auth middleware (valid API keys)
    webhooks: Any = None  # application.notifications.service.Webhooks (None: not served by this process)
    webhook_worker: Any = None  # kicked after a redelivery or an enabled endpoint (in-process worker)

    @property
    def app(self) -> ContractsApplication:
        return self.services.app

    @cached_property
    def rendered(self) -> RenderedContracts:
        """The contract views this process rendered (``api.views.RenderedContracts``)."""
        return RenderedContracts(self.app.policy)

    @property
    def sandbox(self) -> bool:
        return self.mode == "sandbox"

    def now(self) -> datetime:
        """Business time for the next command: the service clock (settable in sandbox mode)."""
        return self.clock.now()

    def today(self) -> date:
        return jst_date(self.now())

    def settle(self, position: int | None) -> bool:
        """Read-your-writes: wait (bounded) until the read models have processed ``position``."""
        if position is None:
            return True
        caught_up = bool(self.read_models.wait_for(position, timeout=self.wait_timeout))
        if not caught_up:
            log.warning("read models did not reach position %s within %.1fs", position, self.wait_timeout)
        return caught_up


async def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
