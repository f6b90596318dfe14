"""Each rule in one place (issue 13): the named rule functions and tables of ``domain/``,
with values computed by hand from the rule book."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from domain.calendar import Month
from domain.contract import next_month_start, supersede
from domain.deadlines import DEADLINE_KIND_NAMES, DEADLINE_KINDS, KIND_BY_NAME, deadline_label
from domain.personal_data import ERASED, PERSONAL_FIELD_NAMES, REDACTED, is_erased
from domain.policy import Policy
from domain.retention import retention_deadline
from domain.sla import Coverage, breach_date, liability_cap

DOMAIN = Path(__file__).resolve().parents[2] / "domain"


# --------------------------------------------------------------------------- Art. 15.3 retention
def test_art_15_3_retention_date_worked_example() -> None:
    """Terminated 2026-06-30, 60 days kept: 06-30 + 60 = 08-29 (July has 31 days: 07-31 is +31)."""
    assert retention_deadline(date(2026, 6, 30), Policy(retention_days=60)) == date(2026, 8, 29)


def test_art_15_3_retention_days_is_a_policy_value() -> None:
    """POLICY retention_days = 30: ended 2026-12-31 -> 2027-01-30."""
    assert retention_deadline(date(2026, 12, 31), Policy(retention_days=30)) == date(2027, 1, 30)


# --------------------------------------------------------------------------- Art. 20.1 breach date
def test_art_20_1_breach_date_is_the_jst_date_of_start_plus_24_hours() -> None:
    """Start 2026-06-09T15:30Z = 06-10 00:30 JST; + 24 h = 06-11 00:30 JST -> 2026-06-11
    (the UTC date of start + 24 h would be 06-10)."""
    assert breach_date(datetime(2026, 6, 9, 15, 30, tzinfo=UTC)) == date(2026, 6, 11)


# --------------------------------------------------------------------------- Art. 20.2.1 / 21.1
@pytest.mark.parametrize(("coverage", "covered", "cap"), [
    (Coverage.of(30_000, had_trial=False, beta=False, store=False, sla_eligible=True), True, 30_000),
    (Coverage.of(30_000, had_trial=True, beta=False, store=False, sla_eligible=True), True, 30_000),
    (Coverage.of(None, had_trial=True, beta=False, store=False, sla_eligible=True), False, 0),  # trial month
    (Coverage.of(9_500, had_trial=False, beta=True, store=False, sla_eligible=False), False, 0),
    (Coverage.of(0, had_trial=False, beta=False, store=True, sla_eligible=False), False, 0),
    (Coverage.of(None, had_trial=False, beta=False, store=False, sla_eligible=True), True, 0),  # no fee that month
])
def test_art_20_2_1_coverage_and_art_21_1_liability_cap(coverage: Coverage, covered: bool, cap: int) -> None:
    """Art. 21.1: the cap is one month's fee of the damage month; trials, beta and the store
    service are not covered (Art. 20.2.1) and have no cap."""
    assert (coverage.covered, liability_cap(coverage)) == (covered, cap)


# --------------------------------------------------------------------------- Art. 10.1 supersede
def test_art_10_1_a_later_request_for_the_same_month_supersedes_the_earlier() -> None:
    pending = [("a", Month(2026, 6)), ("b", Month(2026, 7))]
    assert supersede(pending, ("c", Month(2026, 6)), lambda c: c[1]) == [("b", Month(2026, 7)), ("c", Month(2026, 6))]
    assert supersede(pending, ("d", Month(2026, 8)), lambda c: c[1]) == [*pending, ("d", Month(2026, 8))]


# --------------------------------------------------------------------------- Art. 8 / 10 month start
def test_art_8_10_next_month_start() -> None:
    """Concluded: the first month; in service: the month after the period, or an earlier change."""
    assert next_month_start(True, True, Month(2026, 5), None, []) == Month(2026, 5)
    assert next_month_start(True, False, Month(2026, 5), Month(2027, 4), []) == Month(2027, 5)
    assert next_month_start(True, False, Month(2026, 5), Month(2027, 4), [Month(2026, 9)]) == Month(2026, 9)
    assert next_month_start(False, False, Month(2026, 5), Month(2027, 4), []) is None


# --------------------------------------------------------------------------- spec 11 deadline kinds
def test_spec_11_every_deadline_kind_has_an_article_and_a_label() -> None:
    assert len(set(DEADLINE_KIND_NAMES)) == len(DEADLINE_KINDS) == 12
    for kind in DEADLINE_KINDS:
        assert kind.article.startswith(("Art. ", "rule book ")), kind
        assert kind.label == f"{kind.what} ({kind.article})" and kind.what, kind
        assert KIND_BY_NAME[kind.name] is kind
    assert deadline_label("stored_data_deletion") == "stored data deleted (Art. 15.3)"
    assert deadline_label("contractor_data_erasure") == (
        "contractor data erased after the records period (Art. 13, spec 10)")
    assert deadline_label("trial_end") == "trial ends (Art. 5.2)"
    assert deadline_label("unknown") == "unknown"


def test_spec_11_firing_order_of_one_day() -> None:
    """Month starts before overdue marks, the retention deletion after the window closes."""
    assert DEADLINE_KIND_NAMES == ("trial_end", "month_start", "payment_reminder", "payment_overdue",
                                   "overdue_reminder", "suspension_notice",
                                   "suspension_stop", "sla_window_end", "stored_data_deletion",
                                   "contractor_data_erasure", "discontinuation", "terms_change_effective")


# --------------------------------------------------------------------------- spec 10 personal fields
def test_spec_10_personal_fields_and_how_they_read() -> None:
    assert PERSONAL_FIELD_NAMES == {"contractor", "evidence", "reference",  # reference: the payer's (issue 14)
                                    "payer_name", "bank_reference",  # a transfer's (rule book 7)
                                    "recipient"}  # recipient: Art. 57-4(1) item 6
    assert set(ERASED) == set(REDACTED) == PERSONAL_FIELD_NAMES
    assert is_erased(ERASED["contractor"]) and is_erased(ERASED["evidence"]) and is_erased(ERASED["reference"])
    assert is_erased(ERASED["recipient"])
    assert not is_erased(REDACTED["contractor"]) and not is_erased({"name": "x"})


# --------------------------------------------------------------------------- found by one grep
@pytest.mark.parametrize(("article", "definition"), [
    ("Art. 15.3", "^def retention_deadline("),
    ("Art. 21.1", "^def liability_cap("),
    ("Art. 20.2.1", "^    def covered("),
    ("Art. 20.1", "^def breach_date("),
    ("Art. 10.1", "^def supersede("),
    ("Art. 8 / 10", "^def next_month_start("),
    ("rule book 7", "^def payment_reminder_on("),
    ("Art. 57-4", "^def registration_number("),
    ("Art. 57-4", "^def rate_totals("),
])
def test_each_rule_is_found_from_its_article_by_one_grep(article: str, definition: str) -> None:
    """The rule is defined once in ``domain/`` and its docstring names the article, so
    ``grep -rn "<article>" domain/`` finds it."""
    found = subprocess.run(["grep", "-rn", "-A3", definition, str(DOMAIN)], capture_output=True, text=True).stdout
    assert found.count(definition.lstrip("^").strip()) == 1, found  # one definition
    assert article in found, found
