"""Spec 12: notices the terms require, pushed out as signed notifications, retried until acknowledged.

The rules of delivery (not of transport): which notices the terms require and by which
article, how long a notification is retried and when an endpoint that keeps failing is
switched off. Time is always an argument. The POLICY values are settings
(``CONTRACTS_WEBHOOK_*``); the defaults here are the spec's and the peers' (Stripe retries for
3 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.calendar import require_aware

NOTICE_ARTICLES = {
    "Art. 9.5": "the reason and stop date of a suspension, told in advance",
    "Art. 18": "a service discontinuation, announced at least 3 months ahead",
    "Art. 28": "a terms change, announced before it takes effect",
}
"""The notices the terms oblige the provider to give (spec 12); a notification type that carries
one names its article, and a contract's read shows when each was delivered."""


@dataclass(frozen=True)
class DeliveryPolicy:
    """POLICY of spec 12: retried with exponential back-off for ``retry_days``; an endpoint whose
    deliveries have failed without a success for ``disable_after_days`` is disabled."""

    retry_days: float = 3  # POLICY webhook_retry_days (Stripe: 3 days)
    disable_after_days: float = 3  # POLICY webhook_disable_after_days
    first_retry_seconds: float = 30.0  # interval after the first failure, doubled after each further one
    max_retry_interval_seconds: float = 6 * 3600.0  # the doubling stops here

    def next_attempt(self, failures: int, failed_at: datetime) -> datetime:
        """When to try again after the ``failures``-th failed attempt (1 = the first) at ``failed_at``."""
        require_aware(failed_at, "failed_at")
        if failures < 1:
            raise ValueError("failures counts from 1")
        interval = min(self.first_retry_seconds * 2 ** min(failures - 1, 62), self.max_retry_interval_seconds)
        return failed_at + timedelta(seconds=interval)

    def gives_up(self, first_attempt_at: datetime, now: datetime) -> bool:
        """A notification first tried at ``first_attempt_at`` is no longer retried at ``now``."""
        return now - require_aware(first_attempt_at, "first_attempt_at") >= timedelta(days=self.retry_days)

    def disables(self, failing_since: datetime, now: datetime) -> bool:
        """An endpoint failing without a success since ``failing_since`` is disabled at ``now``."""
        return now - require_aware(failing_since, "failing_since") >= timedelta(days=self.disable_after_days)
