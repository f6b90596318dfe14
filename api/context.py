"""What the routes need, built once by ``create_app`` and reached through ``Depends(context)``."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from fastapi import Request

from application.clock import Clock
from application.read_models import ReadModels
from application.service import ContractsApplication
from domain.calendar import jst_date
from domain.contract import Contract
from infrastructure.api_store import ApiStore
from infrastructure.composition import Services

log = logging.getLogger("api")


class ApiReadModels(ReadModels, Protocol):
    """The read side as the API uses it: the protocol plus as-of and claim lookups
    (``infrastructure.read_side.ReadModelsImpl``)."""

    def contract_as_of(self, contract_id: uuid.UUID, at: datetime | None = None) -> Contract | None: ...

    def claim_contract(self, claim_id: uuid.UUID) -> uuid.UUID | None: ...

    def position(self) -> int: ...


class PositionWatcher:
    """Read-your-writes when the projection runner is another process: one thread of this process
    reads the read models' position every ``interval`` seconds while requests wait, and wakes
    those whose position was reached.

    Instead of each waiting request polling the database on its own (every 20 ms in
    ``ReadModelsImpl.wait_for``): fewer queries with many requests in flight, and a finer grain.
    The thread sleeps while nobody waits. A failed read is raised in the requests waiting then."""

    def __init__(self, read_position: Callable[[], int], interval: float = 0.004) -> None:
        self._read, self.interval = read_position, interval
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._known = 0
        self._waiters = 0
        self._failures = 0
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.reads = 0

    def wait_for(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._known >= position:
                return True
            failures = self._failures
            self._waiters += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="read-models-watcher", daemon=True)
                self._thread.start()
            self._wake.set()
            try:
                while self._known < position:
                    if self._failures != failures and self._failure is not None:
                        raise self._failure
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._waiters -= 1

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._cond:
                if self._waiters == 0:
                    self._wake.clear()
                    continue
            try:
                position = self._read()
                self.reads += 1
            except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
                with self._cond:
                    self._failures += 1
                    self._failure = exc
                    self._cond.notify_all()
                time.sleep(0.05)
                continue
            with self._cond:
                if position > self._known:
                    self._known = position
                    self._cond.notify_all()
            time.sleep(self.interval)


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
    watcher: PositionWatcher | None = None  # read-your-writes with the runner in another process

    @property
    def app(self) -> ContractsApplication:
        return self.services.app

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
        runner = getattr(self.read_models, "runner", None)
        if runner is not None and not getattr(runner, "running_in_thread", True):
            with self.lock:
                if self.watcher is None:
                    self.watcher = PositionWatcher(self.read_models.position)
            caught_up = self.watcher.wait_for(position, self.wait_timeout)
        else:  # the runner is a thread of this process: its own wake-ups are immediate
            caught_up = bool(self.read_models.wait_for(position, timeout=self.wait_timeout))
        if not caught_up:
            log.warning("read models did not reach position %s within %.1fs", position, self.wait_timeout)
        return caught_up


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
