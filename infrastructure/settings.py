"""Process settings, read from ``CONTRACTS_*`` environment variables (or passed explicitly).

Every POLICY value of the spec is a setting here; the defaults are the spec's defaults,
taken from ``domain.policy.Policy`` so that the two can never drift apart.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.calendar import YearEndBreak
from domain.errors import InvalidInput
from domain.invoicing import QUALIFIED_INVOICE, Issuer, number_format, tax_rate
from domain.notifications import DeliveryPolicy
from domain.policy import Policy
from domain.retention import FiscalYearEnd

_SPEC = Policy()
ENV_PREFIX = "CONTRACTS_"
_DELIVERY = DeliveryPolicy()
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_ISSUER_FIELDS = ("name", "registration_number", "address", "contact")
# Settings kept as written and checked by the domain parser the settings build them with later
_PARSED_AS_WRITTEN: dict[str, Callable[[str], object]] = {"year_end_break": YearEndBreak.parse,
                                                        "fiscal_year_end": FiscalYearEnd.parse}
SAMPLE_ISSUER = Issuer(name="見本クラウド株式会社 (sample issuer, sandbox only)", registration_number="T7123456789012",
                       address="東京都千代田区見本町1-1 (fictional)", contact="billing@example.invalid")
"""Sandbox mode only: a fictional issuer (the check-digit example of the corporate number)."""


MASTER_KEY_RULE = "must be base64 of 32 random bytes"


def decode_master_key(text: str | None) -> bytes | None:
    """``CONTRACTS_MASTER_KEY``: base64 (standard or URL-safe) of exactly 32 bytes; None when unset.
    Raises ``ValueError(MASTER_KEY_RULE)`` otherwise."""
    if not text or not text.strip():
        return None
    try:
        raw = base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(MASTER_KEY_RULE) from None
    if len(raw) != 32:
        raise ValueError(MASTER_KEY_RULE)
    return raw


class Settings(BaseSettings):
    """``Settings()`` reads the environment; ``Settings(**values)`` takes values explicitly."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
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
    records_retention_years: int = Field(default=_SPEC.records_retention_years, ge=0, le=100)
    fiscal_year_end: str = str(_SPEC.fiscal_year_end)
    # months from the fiscal year end to the tax return's filing deadline, from whose next day the
    # Corporate Tax Act counts the records period (2 by the law; 0 = the spec's count from the year end)
    records_filing_months: int = Field(default=_SPEC.records_filing_months, ge=0, le=12)
    transfer_fee_tolerance: int = Field(default=_SPEC.transfer_fee_tolerance, ge=0, le=100_000)
    # rule book 7 payment reminders: days before / after an unpaid invoice's due date (0: no such reminder)
    payment_reminder_days_before: int = Field(default=_SPEC.payment_reminder_days_before, ge=0, le=365)
    payment_reminder_days_after: int = Field(default=_SPEC.payment_reminder_days_after, ge=0, le=365)
    annual_auto_renew: bool = _SPEC.annual_auto_renew
    sla_claim_window_days: int = Field(default=_SPEC.sla_claim_window_days, ge=0)
    discontinuation_notice_months: int = Field(default=_SPEC.discontinuation_notice_months, ge=0)
    year_end_break: str = "12-29..01-03"

    # Rule book 6.1: the operator as issuer of qualified invoices (Consumption Tax Act Art. 57-4(1)).
    # Required in production mode; sandbox mode falls back to a clearly fictional sample issuer.
    issuer_name: str | None = None
    issuer_registration_number: str | None = None  # T + 13 digits (corporate number with check digit)
    issuer_address: str | None = None
    issuer_contact: str | None = None
    invoice_number_format: str = _SPEC.invoice_number_format
    # base64 of 32 bytes keying the counterparty blind index of the invoice search; unset: derived
    # from CONTRACTS_MASTER_KEY (and without that, a fixed development key)
    invoice_search_key: SecretStr | None = None
    # TrueType font embedded in invoice PDFs (Japanese text); unset: Debian's IPAex Gothic (./dev installs it)
    invoice_font_path: Path | None = None

    log_level: str = "INFO"
    # ``json``: one JSON object per log line (time, level, logger, message, request_id and the
    # line's fields; ``infrastructure.log_safety``); ``text``: the same fields as key=value.
    log_format: Literal["text", "json"] = "text"
    # The API's line per request (``api.observability``; the metrics are counted either way).
    log_requests: bool = True
    # Prometheus metrics at /metrics (``infrastructure.metrics``): served unless disabled; they need
    # an operator or auditor key unless public (a scraper on a private network without a key).
    metrics_enabled: bool = True
    metrics_public: bool = False
    # OpenTelemetry (``infrastructure.tracing``, the ``tracing`` extra): a server span per request,
    # to an OTLP collector (``OTEL_EXPORTER_OTLP_ENDPOINT``) or the console; off: nothing loaded.
    tracing: Literal["off", "otlp", "console"] = "off"
    tracing_service_name: str = "contracts"
    # Aggregates kept in memory per process (LRU) and fast-forwarded with newer events before each
    # command, so a command does not replay the whole history; 0 disables the cache.
    aggregate_cache_size: int = Field(default=1000, ge=0)
    # Seconds an API process trusts a valid API key it has looked up (0: look it up on every request).
    # A key revoked through that process is refused at once; revoked by another process (``contracts
    # keys revoke``), at the latest this long after. Unknown keys are never cached.
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Worker processes of ``contracts projections rebuild`` (issue 21): the aggregates are shared
    # between them by id, each folding its share into the same new tables (1: the rebuilding
    # process alone). The default fits 2 cores shared with PostgreSQL; logs under 20,000 events
    # are rebuilt by one process whatever this says.
    rebuild_processes: int = Field(default=1, ge=1, le=32)  # 2 tied 1 on the quiet bench (decisions.md)

    # Base64 of 32 bytes: wraps the per-contract data keys (``infrastructure.personal_data``);
    # unset: data keys are stored unwrapped. Never shown (``SecretStr``).
    master_key: SecretStr | None = None
    # Seconds a process caches a contract's data key.
    key_cache_seconds: float = Field(default=30.0, ge=0)
    # PostgreSQL group commit (``infrastructure.persistence.group_commit``): concurrent commands
    # of one process in one transaction, at most ``max_batch`` of them, waiting up to ``linger_ms``.
    pg_group_commit: bool = True
    pg_group_commit_max_batch: int = Field(default=64, ge=1)
    pg_group_commit_linger_ms: float = Field(default=0.0, ge=0)

    # HTTP connections of one API process (``api.http_protocol``, issue 14): a client has this long
    # to send a whole request (headers and body) once it has connected or started a new request on a
    # kept-alive connection (slowloris guard); connections beyond ``http_max_connections`` are
    # refused at once with 503; an idle kept-alive connection is closed after ``http_keep_alive_seconds``.
    http_request_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    http_max_connections: int = Field(default=500, ge=1)
    http_keep_alive_seconds: float = Field(default=5.0, gt=0, le=300)
    # Log lines (``infrastructure.log_safety``): the same message (logger, level, template) is
    # written at most ``log_repeat_limit`` times per ``log_repeat_window_seconds``; the rest are
    # counted and the count is written with the next one let through (0: no limit).
    log_repeat_limit: int = Field(default=20, ge=0)
    log_repeat_window_seconds: float = Field(default=10.0, gt=0)

    @field_validator("master_key", mode="before")
    @classmethod
    def _check_master_key(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError(MASTER_KEY_RULE)
        decode_master_key(value)
        return value.strip()
    # Webhooks (spec 12, docs/webhooks.md). POLICY: retried for 3 days; an endpoint failing that long is disabled.
    webhook_retry_days: float = Field(default=_DELIVERY.retry_days, gt=0, le=30)
    webhook_disable_after_days: float = Field(default=_DELIVERY.disable_after_days, gt=0, le=30)
    webhook_first_retry_seconds: float = Field(default=_DELIVERY.first_retry_seconds, gt=0, le=86400)
    webhook_max_retry_interval_seconds: float = Field(default=_DELIVERY.max_retry_interval_seconds, gt=0,
                                                      le=86400)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)  # per attempt, connect included
    webhook_concurrency: int = Field(default=8, ge=1, le=256)  # attempts in flight per process
    webhook_lease_seconds: float = Field(default=60.0, gt=0, le=3600)  # a killed sender's rows are retaken after
    webhook_secret_overlap_hours: float = Field(default=24.0, ge=0, le=168)  # default overlap of a rolled secret

    # Signed checkpoints of the hash chain (spec 13, docs/auditing.md). The Ed25519 private key
    # (base64 of its 32 raw bytes; ``contracts audit checkpoint-key`` makes one) signs; keep it
    # outside the database. The public key alone verifies (auditors: CONTRACTS_CHECKPOINT_PUBLIC_KEY).
    checkpoint_key: SecretStr | None = None
    checkpoint_public_key: str | None = None
    # Minutes between the scheduler's checkpoints (leader only; 0: only on demand).
    checkpoint_interval_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    # A folder outside the database where every checkpoint is also written as a file.
    checkpoint_dir: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(_POSTGRES_SCHEMES):
            raise ValueError("must be a postgresql://user:password@host:port/dbname URL, or unset for SQLite")
        return value

    @field_validator("checkpoint_key")
    @classmethod
    def _check_checkpoint_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from infrastructure.checkpoint_keys import Ed25519Signer

        Ed25519Signer(value.get_secret_value())  # ValueError names what is wrong, never the value
        return value

    @field_validator("checkpoint_public_key")
    @classmethod
    def _check_checkpoint_public_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from infrastructure.checkpoint_keys import Ed25519Verifier

        Ed25519Verifier(value)
        return value.strip()

    @field_validator("invoice_number_format")
    @classmethod
    def _check_number_format(cls, value: str) -> str:
        try:
            return number_format(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @field_validator(*_PARSED_AS_WRITTEN)
    @classmethod
    def _check_parses(cls, value: str, info: ValidationInfo) -> str:
        """Kept as written; refused (the domain's message) when its domain parser refuses it."""
        try:
            _PARSED_AS_WRITTEN[str(info.field_name)](value)
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

    @field_validator("invoice_search_key")
    @classmethod
    def _check_search_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and decode_master_key(value.get_secret_value()) is None:
            raise ValueError(MASTER_KEY_RULE)
        return value

    def invoice_search_key_bytes(self) -> bytes:
        key = decode_master_key(self.invoice_search_key.get_secret_value()) if self.invoice_search_key else None
        assert key is not None
        return key

    def master_key_text(self) -> str | None:
        return self.master_key.get_secret_value() if self.master_key is not None else None

    def issuer(self) -> Issuer | None:
        """The validated issuer; refuses at start with one line naming the setting (rule book 6.1)."""
        values = {name: getattr(self, f"issuer_{name}") for name in _ISSUER_FIELDS}
        if all(v is None for v in values.values()):
            if self.mode == "sandbox":
                return SAMPLE_ISSUER
            raise InvalidInput(QUALIFIED_INVOICE, "CONTRACTS_ISSUER_NAME, _REGISTRATION_NUMBER, _ADDRESS and "
                               "_CONTACT are required to issue qualified invoices", "issuer_name")
        for name, value in values.items():
            if value is None or not value.strip():
                raise InvalidInput(QUALIFIED_INVOICE, f"CONTRACTS_ISSUER_{name.upper()} is required",
                                   f"issuer_{name}")
        try:
            return Issuer(**{k: v.strip() for k, v in values.items() if v is not None})
        except InvalidInput as exc:
            field = f"issuer_{exc.field}" if exc.field else "issuer_name"
            raise InvalidInput(exc.article, f"CONTRACTS_{field.upper()}: {exc.message}", field) from None

    def policy(self) -> Policy:
        try:
            tax_rate(self.tax_rate)
        except InvalidInput as exc:
            raise InvalidInput(exc.article, f"CONTRACTS_TAX_RATE: {exc.message}", "tax_rate") from None
        return Policy(
            issuer=self.issuer(),
            invoice_number_format=self.invoice_number_format,
            tax_rate=self.tax_rate,
            late_interest_rate=self.late_interest_rate,
            due_months_after=self.due_months_after,
            suspension_notice_after_days=self.suspension_notice_after_days,
            suspension_grace_days=self.suspension_grace_days,
            retention_days=self.retention_days,
            records_retention_years=self.records_retention_years,
            fiscal_year_end=FiscalYearEnd.parse(self.fiscal_year_end),
            records_filing_months=self.records_filing_months,
            transfer_fee_tolerance=self.transfer_fee_tolerance,
            payment_reminder_days_before=self.payment_reminder_days_before,
            payment_reminder_days_after=self.payment_reminder_days_after,
            annual_auto_renew=self.annual_auto_renew,
            sla_claim_window_days=self.sla_claim_window_days,
            discontinuation_notice_months=self.discontinuation_notice_months,
            year_end_break=YearEndBreak.parse(self.year_end_break),
        )

    def delivery_policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(retry_days=self.webhook_retry_days, disable_after_days=self.webhook_disable_after_days,
                              first_retry_seconds=self.webhook_first_retry_seconds,
                              max_retry_interval_seconds=self.webhook_max_retry_interval_seconds)

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


class SettingsError(Exception):
    """A setting the environment (or a caller) gave is invalid: ``str(error)`` is one line naming
    each variable and what is wrong, e.g. ``CONTRACTS_TAX_RATE: must be a decimal number``."""


_MESSAGES = {
    "decimal_parsing": "must be a decimal number",
    "decimal_type": "must be a decimal number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_parsing": "must be true or false (y/n, 1/0, on/off)",
    "bool_type": "must be true or false (y/n, 1/0, on/off)",
    "path_type": "must be a file path",
    "string_type": "must be text",
    "finite_number": "must be a finite number",
}


def _describe(error: Any) -> str:
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "greater_than_equal":
        return f"must be at least {context.get('ge')}"
    if kind == "greater_than":
        return f"must be more than {context.get('gt')}"
    if kind == "less_than":
        return f"must be less than {context.get('lt')}"
    if kind == "less_than_equal":
        return f"must be at most {context.get('le')}"
    if kind == "literal_error":
        return f"must be one of {context.get('expected')}"
    if kind == "value_error":
        return str(context.get("error") or error.get("msg", "is invalid"))
    if kind == "extra_forbidden":
        return "is not a setting"
    return str(error.get("msg", "is invalid")).rstrip(".").lower()


def settings_error(exc: ValidationError) -> SettingsError:
    """One line for every invalid field, named by its environment variable; never the value."""
    parts = []
    for error in exc.errors():
        loc = error.get("loc") or ("?",)
        parts.append(f"{ENV_PREFIX}{str(loc[0]).upper()}: {_describe(error)}")
    return SettingsError("; ".join(parts))


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from the environment (``overrides`` win), for the entry points: an invalid value
    raises ``SettingsError`` (one line) instead of pydantic's multi-line report."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise settings_error(exc) from None
