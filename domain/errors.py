"""Domain errors. Every refusal names the article (or spec section) it enforces."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``article`` names the rule, ``field`` the offending input if any."""

    kind = "domain-error"

    def __init__(self, article: str, message: str, field: str | None = None,
                 refers_to: dict[str, str] | None = None) -> None:
        super().__init__(f"{article}: {message}")
        self.article = article
        self.message = message
        self.field = field
        self.refers_to = dict(refers_to or {})
        """Ids of what the refusal points at (e.g. the outage already recorded), never submitted values."""


class RuleViolation(DomainError):
    """The command is well-formed but the contract's state or the terms forbid it."""

    kind = "rule-violation"


class InvalidInput(DomainError):
    """A value is malformed or out of the allowed range."""

    kind = "invalid-input"


class NotFound(DomainError):
    kind = "not-found"


class ConcurrencyConflict(DomainError):
    """Someone else changed the aggregate first (optimistic concurrency)."""

    kind = "conflict"
