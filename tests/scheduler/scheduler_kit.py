"""Helpers for the deadline sweep and scheduler tests: a "world" is one store (SQLite file or
PostgreSQL schema) with its application, deadlines source, a FixedClock and a Sweeper."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from scan_deadlines import ScanDeadlines

from application.clock import FixedClock
from application.service import ContractsApplication
from application.sweep import DeadlineSource, Sweeper, SweepReport
from domain.calendar import JST
from infrastructure.bootstrap import Services, build_read_models


def jst(y: int, m: int, d: int, h: int = 10, minute: int = 0) -> datetime:
    """An instant given in Tokyo time, as aware UTC."""
    return datetime(y, m, d, h, minute, tzinfo=JST).astimezone(UTC)


CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
              "contact_name": "Hanako Sample", "contact_email": "hanako@example.invalid"}


def build_deadlines(services: Services, source: str = "projection") -> tuple[DeadlineSource, Callable[[], None]]:
    """The deadlines source and a function that stops it: the real read models with their
    runner in a thread (``projection``), the read models of a store whose runner runs elsewhere
    (``follower``: one runner per projection), or the test-only ``scan`` of every aggregate."""
    if source == "scan":
        return ScanDeadlines(services.app), lambda: None
    models = build_read_models(services, in_process=True, start_runner=source == "projection",
                               poll_interval=0.05)
    return models, models.stop


@dataclass
class World:
    services: Services
    deadlines: DeadlineSource
    clock: FixedClock
    sweeper: Sweeper
    stop: Callable[[], None]
    reports: list[SweepReport] = field(default_factory=list)

    @property
    def app(self) -> ContractsApplication:
        return self.services.app

    def sweep_on(self, day: date, hour: int = 6) -> SweepReport:
        """Set the clock to ``day`` (JST, early morning) and run one sweep."""
        self.clock.set(jst(day.year, day.month, day.day, hour))
        report = self.sweeper.run()
        self.reports.append(report)
        return report

    def daily(self, first: date, last: date) -> None:
        day = first
        while day <= last:
            self.sweep_on(day)
            day += timedelta(days=1)

    def names(self, contract_id: uuid.UUID) -> list[str]:
        return [type(e).__name__ for e in self.app.events.get(contract_id)]

    def event(self, contract_id: uuid.UUID, name: str) -> Any:
        found = [e for e in self.app.events.get(contract_id) if type(e).__name__ == name]
        assert len(found) == 1, f"{name}: {len(found)} events in {self.names(contract_id)}"
        return found[0]

    def close(self) -> None:
        self.stop()
        self.services.close()


WorldFactory = Callable[[], World]


