"""Settings: POLICY defaults equal the spec's values; overrides; errors name the field."""

from __future__ import annotations

import base64
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from domain.calendar import YearEndBreak
from domain.retention import FiscalYearEnd
from infrastructure.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CONTRACTS_"):
            monkeypatch.delenv(key)


ISSUER = {"issuer_name": "テスト運営株式会社", "issuer_registration_number": "T7123456789012",
          "issuer_address": "東京都千代田区試験町1-2-3", "issuer_contact": "billing@example.invalid"}


def test_defaults_are_the_spec_policy_values() -> None:
    settings = Settings(**ISSUER)
    policy = settings.policy()
    assert policy.tax_rate == Decimal("0.10")  # spec 1
    assert policy.late_interest_rate == Decimal("0.145")  # Art. 9.4
    assert policy.due_months_after == 1  # spec 6
    assert policy.suspension_notice_after_days == 14  # spec 7
    assert policy.suspension_grace_days == 14  # spec 7
    assert policy.retention_days == 60  # spec 10, Art. 15.3
    assert policy.records_retention_years == 7  # spec 10: Corporate Tax Act records period
    assert policy.fiscal_year_end == FiscalYearEnd(3, 31)  # spec 10
    assert policy.records_filing_months == 2  # the law counts from the filing deadline (rule book 10: year end)
    assert policy.annual_auto_renew is True  # spec 4
    assert policy.sla_claim_window_days == 60  # Art. 20.3
    assert policy.discontinuation_notice_months == 3  # Art. 18
    assert policy.year_end_break == YearEndBreak(12, 29, 1, 3)  # spec 1
    assert settings.mode == "production"
    assert settings.database_url is None and not settings.uses_postgres
    assert settings.sqlite_path == Path("contracts.sqlite")
    assert settings.catalog_path is None
    assert settings.log_level == "INFO"


def test_explicit_values_override_defaults() -> None:
    values: dict[str, Any] = {"tax_rate": "0.08", "retention_days": "90", "year_end_break": "12-30..01-02", **ISSUER}
    settings = Settings(**values)
    policy = settings.policy()
    assert policy.tax_rate == Decimal("0.08")
    assert policy.retention_days == 90
    assert policy.year_end_break == YearEndBreak(12, 30, 1, 2)


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTRACTS_ANNUAL_AUTO_RENEW", "false")
    monkeypatch.setenv("CONTRACTS_MODE", "sandbox")
    settings = Settings()
    assert settings.policy().annual_auto_renew is False
    assert settings.mode == "sandbox"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tax_rate", "ten percent"),
        ("retention_days", "-1"),
        ("year_end_break", "late December"),
        ("mode", "staging"),
        ("database_url", "mysql://u:pw@host/db"),
        ("log_level", "LOUD"),
    ],
)
def test_a_bad_value_names_the_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as err:
        values: dict[str, Any] = {field: value}
        Settings(**values)
    assert [e["loc"] for e in err.value.errors()] == [(field,)]


def test_a_bad_environment_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTRACTS_SUSPENSION_GRACE_DAYS", "two weeks")
    with pytest.raises(ValidationError) as err:
        Settings()
    assert "suspension_grace_days" in str(err.value)


def test_database_label_never_shows_the_password() -> None:
    settings = Settings(database_url="postgresql://billing:s3cr3t@db.example:5433/contracts?password=s3cr3t")
    assert settings.uses_postgres
    assert settings.database_label() == "postgresql://billing@db.example:5433/contracts"
    assert "s3cr3t" not in settings.database_label()
    assert Settings(sqlite_path=Path("x.sqlite")).database_label() == "sqlite:x.sqlite"


def test_validation_error_does_not_echo_a_url_password() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(database_url="mysql://u:s3cr3t@host/db")
    assert "s3cr3t" not in str(err.value)


def test_library_settings_reach_the_application_env(tmp_path: Path) -> None:
    from infrastructure.bootstrap import build_services

    key = base64.b64encode(bytes(range(32))).decode()
    settings = Settings(sqlite_path=tmp_path / "s.sqlite", master_key=key, key_cache_seconds="0",
                        pg_group_commit="off", pg_group_commit_max_batch="7", pg_group_commit_linger_ms="2",
                        **ISSUER)
    assert "s3cr3t" not in repr(Settings(master_key=key)) and key not in repr(settings)  # SecretStr
    services = build_services(settings)
    try:
        env = services.app.env
        assert env.get("MASTER_KEY") == key
        assert float(env.get("KEY_CACHE_SECONDS") or "nan") == 0.0
        assert env.get("PG_GROUP_COMMIT") == "n"
        assert env.get("PG_GROUP_COMMIT_MAX_BATCH") == "7"
        assert float(env.get("PG_GROUP_COMMIT_LINGER_MS") or "nan") == 2.0
    finally:
        services.close()
    explicit = build_services(settings, env={"PERSISTENCE_MODULE": "eventsourcing.popo",
                                             "CONTRACTS_PG_GROUP_COMMIT": "y"})
    try:
        assert explicit.app.env.get("PG_GROUP_COMMIT") == "y"  # a key the caller gives wins
    finally:
        explicit.close()


def test_master_key_must_be_base64_of_32_bytes() -> None:
    assert Settings(master_key=base64.urlsafe_b64encode(bytes(32)).decode()).master_key_text() is not None
    assert Settings(master_key="  ").master_key is None
    for bad in ("not base64!", base64.b64encode(bytes(31)).decode()):
        with pytest.raises(ValidationError) as err:
            Settings(master_key=bad)
        assert [e["loc"] for e in err.value.errors()] == [("master_key",)]


def test_spec_10_records_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTRACTS_RECORDS_RETENTION_YEARS", "10")
    monkeypatch.setenv("CONTRACTS_FISCAL_YEAR_END", "12-31")
    policy = Settings(**ISSUER).policy()
    assert (policy.records_retention_years, policy.fiscal_year_end) == (10, FiscalYearEnd(12, 31))
    monkeypatch.setenv("CONTRACTS_FISCAL_YEAR_END", "02-30")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "fiscal_year_end" in str(info.value) and "MM-DD" in str(info.value)


def test_rule_book_6_1_issuer_settings_are_validated_at_start_naming_the_setting() -> None:
    from domain.errors import InvalidInput

    assert Settings(**ISSUER).policy().issuer is not None
    with pytest.raises(InvalidInput) as missing:
        Settings().policy()  # production: no qualified invoice without an issuer
    assert missing.value.field == "issuer_name" and "CONTRACTS_ISSUER_NAME" in missing.value.message
    with pytest.raises(InvalidInput) as wrong:
        Settings(**{**ISSUER, "issuer_registration_number": "T8123456789012"}).policy()
    assert wrong.value.field == "issuer_registration_number"
    assert "CONTRACTS_ISSUER_REGISTRATION_NUMBER" in wrong.value.message and "check digit" in wrong.value.message
    with pytest.raises(InvalidInput) as partial:
        Settings(**{**ISSUER, "issuer_contact": None}).policy()
    assert partial.value.field == "issuer_contact"
    sandbox = Settings(mode="sandbox").policy().issuer
    assert sandbox is not None and "sample" in sandbox.name  # the fictional sandbox issuer
    with pytest.raises(InvalidInput) as rate:
        Settings(**ISSUER, tax_rate="0.05").policy()
    assert rate.value.field == "tax_rate"
    with pytest.raises(ValidationError):
        Settings(invoice_number_format="INV-{month}")


def test_rule_book_6_1_a_missing_issuer_is_one_line_naming_the_setting(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_")}
    env["CONTRACTS_SQLITE_PATH"] = str(tmp_path / "x.sqlite")
    env["CONTRACTS_ISSUER_REGISTRATION_NUMBER"] = "T7123456789013"
    for key in ("NAME", "ADDRESS", "CONTACT"):
        env[f"CONTRACTS_ISSUER_{key}"] = "x"
    done = subprocess.run([sys.executable, "-m", "api.cli", "sweep", "--no-progress"], env=env, text=True,
                          capture_output=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "CONTRACTS_ISSUER_REGISTRATION_NUMBER" in lines[0], done.stderr
