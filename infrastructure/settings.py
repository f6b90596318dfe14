"""Process settings, read from ``CONTRACTS_*`` environment variables (or passed explicitly).

Every POLICY value of the spec is a setting here; the defaults are the spec's defaults,
taken from ``domain.policy.Policy`` so that the two can never drift apart.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.calendar import YearEndBreak
from domain.errors import InvalidInput
from domain.policy import Policy

_SPEC = Policy()
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """``Settings()`` reads the environment; ``Settings(**values)`` takes values explicitly."""

    model_config = SettingsConfigDict(
        env_prefix="CONTRACTS_",
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,  # URLs hold passwords
    )

    database_url: str | None = None  # postgresql://... selects PostgreSQL; unset -> SQLite
    sqlite_path: Path = Path("contracts.sqlite")
    catalog_path: Path | None = None  # None -> the packaged sample catalog
    mode: Literal["production", "sandbox"] = "production"

    tax_rate: Decimal = Field(default=_SPEC.tax_rate, ge=0, lt=1)
    late_interest_rate: Decimal = Field(default=_SPEC.late_interest_rate, ge=0, lt=1)
    due_months_after: int = Field(default=_SPEC.due_months_after, ge=0)
    suspension_notice_after_days: int = Field(default=_SPEC.suspension_notice_after_days, ge=0)
    suspension_grace_days: int = Field(default=_SPEC.suspension_grace_days, ge=0)
    retention_days: int = Field(default=_SPEC.retention_days, ge=0)
    annual_auto_renew: bool = _SPEC.annual_auto_renew
    sla_claim_window_days: int = Field(default=_SPEC.sla_claim_window_days, ge=0)
    discontinuation_notice_months: int = Field(default=_SPEC.discontinuation_notice_months, ge=0)
    year_end_break: str = "12-29..01-03"

    log_level: str = "INFO"
    # Aggregates kept in memory per process (LRU) and fast-forwarded with newer events before each
    # command, so a command does not replay the whole history; 0 disables the cache.
    aggregate_cache_size: int = Field(default=1000, ge=0)
    # Seconds an API process trusts a valid API key it has looked up (0: look it up on every request).
    # A key revoked through that process is refused at once; revoked by another process (``contracts
    # keys revoke``), at the latest this long after. Unknown keys are never cached.
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=300)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(_POSTGRES_SCHEMES):
            raise ValueError("must be a postgresql://user:password@host:port/dbname URL, or unset for SQLite")
        return value

    @field_validator("year_end_break")
    @classmethod
    def _check_year_end_break(cls, value: str) -> str:
        try:
            YearEndBreak.parse(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_log_level(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.upper()
            if value not in _LOG_LEVELS:
                raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return value

    def policy(self) -> Policy:
        return Policy(
            tax_rate=self.tax_rate,
            late_interest_rate=self.late_interest_rate,
            due_months_after=self.due_months_after,
            suspension_notice_after_days=self.suspension_notice_after_days,
            suspension_grace_days=self.suspension_grace_days,
            retention_days=self.retention_days,
            annual_auto_renew=self.annual_auto_renew,
            sla_claim_window_days=self.sla_claim_window_days,
            discontinuation_notice_months=self.discontinuation_notice_months,
            year_end_break=YearEndBreak.parse(self.year_end_break),
        )

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    def database_label(self) -> str:
        """Where the events live, for logs and the CLI: never includes a password."""
        if self.database_url is None:
            return f"sqlite:{self.sqlite_path}"
        try:
            parts = urlsplit(self.database_url)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            user = f"{parts.username}@" if parts.username else ""
        except ValueError:
            return "postgresql://(unparseable URL)"
        return f"postgresql://{user}{host}{port}{parts.path}"
