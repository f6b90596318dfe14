"""``contract_deadlines`` for open invoices (rule book 7, Art. 9.5, spec 7), hand-computed: the
reminders, overdue marks and suspension notices are read from the policy once per contract
(issue 21) with the same dates as ``payment_reminder_on`` per invoice."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from domain.deadlines import DueAction, Timeline, contract_deadlines
from domain.policy import Policy

A, B = "inv-a", "inv-b"  # due 2026-05-31 (unpaid, not overdue), due 2026-04-30 (marked overdue)


def _timeline(**changes: object) -> Timeline:
    t = Timeline(service="kintone", state="active", open_invoices={A: (date(2026, 5, 31), 13_200),
                                                                   B: (date(2026, 4, 30), 13_200)},
                 overdue={B})
    return replace(t, **changes)


def _invoice_rows(t: Timeline, policy: Policy) -> list[DueAction]:
    return [d for d in contract_deadlines(t, policy) if d.ref in (A, B)]


def test_open_invoices_default_policy() -> None:
    assert _invoice_rows(_timeline(), Policy()) == [
        DueAction(date(2026, 5, 7), "overdue_reminder", B),  # 04-30 + 7 (no before-due reminder: overdue)
        DueAction(date(2026, 5, 14), "suspension_notice", B),  # 04-30 + 14, active
        DueAction(date(2026, 5, 24), "payment_reminder", A),  # 05-31 - 7
        DueAction(date(2026, 6, 1), "payment_overdue", A),  # 05-31 + 1
        DueAction(date(2026, 6, 7), "overdue_reminder", A),  # 05-31 + 7
    ]


def test_reminders_recorded_turned_off_and_path_ran() -> None:
    policy = replace(Policy(), payment_reminder_days_before=0, payment_reminder_days_after=3,
                     suspension_notice_after_days=10)
    t = _timeline(reminded={f"{B}|after_due"}, state="suspension_noticed")
    assert _invoice_rows(t, policy) == [
        DueAction(date(2026, 6, 1), "payment_overdue", A),
        DueAction(date(2026, 6, 3), "overdue_reminder", A),  # 05-31 + 3; B's was recorded, no notice: not active
    ]
    ended = _timeline(termination_reason="non_payment", state="terminated")
    assert _invoice_rows(ended, Policy()) == [  # Art. 9.5: no overdue mark once the path has run
        DueAction(date(2026, 5, 7), "overdue_reminder", B),
        DueAction(date(2026, 5, 24), "payment_reminder", A),
        DueAction(date(2026, 6, 7), "overdue_reminder", A),
    ]
