"""Service-wide facts as their own aggregates: outages, discontinuations, terms changes."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from eventsourcing.domain import Aggregate, event

from domain.calendar import Month, jst_date, require_aware
from domain.errors import InvalidInput, RuleViolation
from domain.folds import event_class
from domain.sla import OutageCause, OutageFacts

SERVICE_NAMESPACE = uuid.UUID("a7d2e0c4-8b1f-4c2e-b6a9-5e3d1f0c7b22")


class Outage(Aggregate):
    """One outage of one service, recorded once (spec 8)."""

    @staticmethod
    def create_id(service: str, started_at: datetime) -> uuid.UUID:
        return uuid.uuid5(SERVICE_NAMESPACE, f"outage\x1f{service}\x1f{started_at.isoformat()}")

    @classmethod
    def record(cls, service: str, started_at: datetime, ended_at: datetime, cause: OutageCause,
               at: datetime) -> Outage:
        require_aware(started_at, "started_at")
        require_aware(ended_at, "ended_at")
        if ended_at <= started_at:
            raise InvalidInput("Art. 20.1", "ended_at must be after started_at", "ended_at")
        if ended_at > require_aware(at) + timedelta(minutes=5):
            raise InvalidInput("Art. 20.1", "an outage cannot end in the future", "ended_at")
        return cls(service=service, started_at=started_at, ended_at=ended_at, cause=cause, recorded_at=at)

    @event("OutageRecorded")
    def __init__(self, service: str, started_at: datetime, ended_at: datetime, cause: OutageCause,
                 recorded_at: datetime) -> None:
        self.service, self.started_at, self.ended_at, self.cause = service, started_at, ended_at, cause

    @property
    def facts(self) -> OutageFacts:
        return OutageFacts(self.id, self.service, self.started_at, self.ended_at, self.cause)


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
