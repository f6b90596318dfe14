"""Service-wide facts as their own aggregates: outages, discontinuations, terms changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from eventsourcing.domain import Aggregate, event

from domain.calendar import Month, jst_date, require_aware
from domain.errors import InvalidInput, RuleViolation
from domain.folds import event_class
from domain.sla import OutageCause, OutageFacts

SERVICE_NAMESPACE = uuid.UUID("a7d2e0c4-8b1f-4c2e-b6a9-5e3d1f0c7b22")


class Outage(Aggregate):
    """One outage of one service, recorded once (spec 8): its instants are kept in UTC, and
    ``OutageLog`` refuses a second outage overlapping it."""

    @staticmethod
    def create_id(service: str, started_at: datetime) -> uuid.UUID:
        # the instant, not its spelling: +09:00 and Z of the same moment are one id (spec 8)
        instant = require_aware(started_at, "started_at").astimezone(UTC)
        return uuid.uuid5(SERVICE_NAMESPACE, f"outage\x1f{service}\x1f{instant.isoformat()}")

    @classmethod
    def record(cls, service: str, started_at: datetime, ended_at: datetime, cause: OutageCause,
               at: datetime) -> Outage:
        require_aware(started_at, "started_at")
        require_aware(ended_at, "ended_at")
        if ended_at <= started_at:
            raise InvalidInput("Art. 20.1", "ended_at must be after started_at", "ended_at")
        if ended_at > require_aware(at) + timedelta(minutes=5):
            raise InvalidInput("Art. 20.1", "an outage cannot end in the future", "ended_at")
        return cls(service=service, started_at=started_at.astimezone(UTC), ended_at=ended_at.astimezone(UTC),
                   cause=cause, recorded_at=at)

    @event("OutageRecorded")
    def __init__(self, service: str, started_at: datetime, ended_at: datetime, cause: OutageCause,
                 recorded_at: datetime) -> None:
        self.service, self.started_at, self.ended_at, self.cause = service, started_at, ended_at, cause

    @property
    def facts(self) -> OutageFacts:
        return OutageFacts(self.id, self.service, self.started_at, self.ended_at, self.cause)


@dataclass(frozen=True)
class ListedOutage:
    outage_id: uuid.UUID
    started_at: datetime
    ended_at: datetime

    def overlaps(self, started_at: datetime, ended_at: datetime) -> bool:
        """Half-open intervals compared as instants: one ending when the other starts does not overlap."""
        return self.started_at < ended_at and started_at < self.ended_at


class OutageLog(Aggregate):
    """The outages recorded for one service (spec 8, Art. 20): one outage per stretch of time.

    THE rule "an outage that overlaps one already recorded for the same service is the same
    outage and is refused" lives in ``admit``. The log is saved in the same transaction as the
    new ``Outage``, so two writers recording overlapping outages at once (two processes) collide
    on the log's next version and the loser, checked again, is refused: no contract is credited
    twice for the same hours."""

    @staticmethod
    def create_id(service: str) -> uuid.UUID:
        return uuid.uuid5(SERVICE_NAMESPACE, f"outage-log\x1f{service}")

    @classmethod
    def open(cls, service: str, recorded: Iterable[tuple[uuid.UUID, datetime, datetime]] = ()) -> OutageLog:
        """A new log, listing the outages recorded before the log existed (as they are, even if
        they overlap each other: they are facts already)."""
        log = cls(service=service)
        for outage_id, started_at, ended_at in sorted(recorded, key=lambda r: (r[1], str(r[0]))):
            log._listed(outage_id=outage_id, started_at=started_at.astimezone(UTC),
                        ended_at=ended_at.astimezone(UTC))
        return log

    @event("OutageLogOpened")
    def __init__(self, service: str) -> None:
        self.service = service
        self.outages: list[ListedOutage] = []

    def overlapping(self, started_at: datetime, ended_at: datetime) -> ListedOutage | None:
        return next((o for o in self.outages if o.overlaps(started_at, ended_at)), None)

    def admit(self, outage: Outage) -> None:
        """Spec 8 (Art. 20): refuse an outage overlapping one already recorded for the service."""
        if outage.service != self.service:
            raise InvalidInput("Art. 20", "the outage belongs to another service", "service")
        existing = self.overlapping(outage.started_at, outage.ended_at)
        if existing is not None:
            raise RuleViolation("Art. 20", "an outage overlapping this period is already recorded for the service: "
                                "it is the same outage (claim against the recorded one)", "started_at",
                                refers_to={"existing_outage_id": str(existing.outage_id)})
        self._listed(outage_id=outage.id, started_at=outage.started_at, ended_at=outage.ended_at)

    @event("OutageListed")
    def _listed(self, outage_id: uuid.UUID, started_at: datetime, ended_at: datetime) -> None:
        self.outages.append(ListedOutage(outage_id, started_at, ended_at))


class ServiceDiscontinuation(Aggregate):
    """Art. 18: announced at least 3 calendar months before the date; every contract ends then."""

    @staticmethod
    def create_id(service: str) -> uuid.UUID:
        return uuid.uuid5(SERVICE_NAMESPACE, f"discontinuation\x1f{service}")

    @classmethod
    def announce(cls, service: str, discontinue_on: date, at: datetime, notice_months: int = 3
                 ) -> ServiceDiscontinuation:
        announced = jst_date(at)
        target = Month.of(announced).plus(notice_months)
        earliest = target.first_day.replace(day=min(announced.day, target.days))
        if discontinue_on < earliest:
            raise RuleViolation("Art. 18", f"discontinuation needs {notice_months} months' notice: "
                                f"announced {announced}, earliest date {earliest}")
        return cls(service=service, discontinue_on=discontinue_on, announced_on=announced, at=at)

    @event("DiscontinuationAnnounced")
    def __init__(self, service: str, discontinue_on: date, announced_on: date, at: datetime) -> None:
        self.service, self.discontinue_on, self.announced_on = service, discontinue_on, announced_on
        self.completed = False

    def complete(self, on: date) -> None:
        if self.completed:
            raise RuleViolation("Art. 18", "discontinuation already carried out")
        if on < self.discontinue_on:
            raise RuleViolation("Art. 18", f"the service is discontinued on {self.discontinue_on}")
        self._completed(completed_on=on)

    @event("DiscontinuationCompleted")
    def _completed(self, completed_on: date) -> None:
        self.completed = True


class TermsChange(Aggregate):
    """Art. 28: announced before its effective date; objecting customers may terminate before it."""

    @staticmethod
    def create_id(terms_version: str) -> uuid.UUID:
        # the parameter is named like the ``__init__`` argument: eventsourcing passes it by name
        return uuid.uuid5(SERVICE_NAMESPACE, f"terms\x1f{terms_version}")

    @classmethod
    def announce(cls, version: str, effective_on: date, summary: str, at: datetime) -> TermsChange:
        announced = jst_date(at)
        if not version or len(version) > 64:
            raise InvalidInput("Art. 28", "version is required (at most 64 characters)", "version")
        if effective_on <= announced:
            raise RuleViolation("Art. 28", "a terms change must be announced before its effective date")
        return cls(terms_version=version, effective_on=effective_on, summary=summary, announced_on=announced, at=at)

    @event("TermsChangeAnnounced")
    def __init__(self, terms_version: str, effective_on: date, summary: str, announced_on: date,
                 at: datetime) -> None:
        self.terms_version, self.effective_on, self.summary = terms_version, effective_on, summary
        self.announced_on, self.in_effect = announced_on, False

    def take_effect(self, on: date) -> None:
        if self.in_effect:
            raise RuleViolation("Art. 28", "terms change already in effect")
        if on < self.effective_on:
            raise RuleViolation("Art. 28", f"takes effect on {self.effective_on}")
        self._took_effect(on=on)

    @event("TermsChangeTookEffect")
    def _took_effect(self, on: date) -> None:
        self.in_effect = True


class ServiceEvents:
    """The service aggregates' event classes (made by ``@event``), typed for dispatch."""

    OutageRecorded = event_class(Outage, "OutageRecorded")
    DiscontinuationAnnounced = event_class(ServiceDiscontinuation, "DiscontinuationAnnounced")
    DiscontinuationCompleted = event_class(ServiceDiscontinuation, "DiscontinuationCompleted")
    TermsChangeAnnounced = event_class(TermsChange, "TermsChangeAnnounced")
    TermsChangeTookEffect = event_class(TermsChange, "TermsChangeTookEffect")
