"""Random contract histories for the rebuild / crash tests: a list of steps played against the
application; commands the rules refuse store nothing and are skipped."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from projection_kit import CONTRACTOR, jst

from application.service import ContractsApplication
from domain.calendar import Month
from domain.contract import BillingCycle
from domain.errors import DomainError
from domain.sla import OutageCause, Remedy

ACTIONS = ("advance",) * 4 + ("pay",) * 3 + ("pay_part", "overdue", "suspend", "change", "claim", "decide") * 2 + (
    "stop", "notice", "expire", "delete", "erase", "privacy", "apply", "approve", "reject")
GRADES = {"kintone": ("light", "standard", "premium"), "garoon": ("standard",), "mailwise-beta": ("standard",)}
CAUSES = (OutageCause.PROVIDER_NETWORK, OutageCause.PROVIDER_NETWORK, OutageCause.SCHEDULED_MAINTENANCE,
          OutageCause.FORCE_MAJEURE)


@dataclass(frozen=True)
class Step:
    action: str
    contract: int  # index into the contracts of the history
    days: int  # how far the clock moves before the step
    pick: int  # a free number choosing amounts, grades, proofs ...


def random_steps(rng: random.Random, n: int, contracts: int = 4) -> list[Step]:
    return [Step(rng.choice(ACTIONS), rng.randrange(contracts), rng.randrange(0, 9), rng.randrange(10**6))
            for _ in range(n)]


class History:
    """Plays steps against ``app`` on a clock that starts 2026-03-02 and only moves forward."""

    def __init__(self, app: ContractsApplication, prefix: str = "H", contracts: int = 4) -> None:
        self.app, self.today = app, date(2026, 3, 2)
        self.contracts: list[uuid.UUID] = []
        self.outages = 0
        setups: list[tuple[str, str, dict[str, Any]]] = [
            ("kintone", "standard", {"cycle": BillingCycle.MONTHLY}),
            ("kintone", "standard", {"cycle": BillingCycle.ANNUAL}),
            ("kintone", "light", {"trial": True}),
            ("garoon", "standard", {"cycle": BillingCycle.MONTHLY}),
            ("mailwise-beta", "standard", {"cycle": BillingCycle.MONTHLY}),
        ]
        for i in range(contracts):
            service, grade, options = setups[i % len(setups)]
            users = 12
            r = app.open_contract(f"{prefix}-{i}", service, grade, users, CONTRACTOR, jst(2026, 3, 2), **options)
            self.contracts.append(r.aggregate_id)
            if i in (0, 1):
                app.approve(r.aggregate_id, jst(2026, 3, 5))

    def play(self, step: Step) -> bool:
        """Run one step; True if it stored events."""
        self.today += timedelta(days=step.days)
        try:
            return self._play(step)
        except DomainError:
            return False

    def _play(self, s: Step) -> bool:  # noqa: C901 - one branch per action
        app, cid, today, at = self.app, self.contracts[s.contract], self.today, jst(*self._ymd())
        c = app.get_contract(cid)
        invoices = sorted(c.ledger.invoices.values(), key=lambda i: (i.month, i.kind, i.period))
        open_invoices = [i for i in invoices if i.outstanding > 0]
        if s.action == "advance":
            app.advance(cid, Month.of(today))
        elif s.action in ("pay", "pay_part") and open_invoices:
            inv = open_invoices[s.pick % len(open_invoices)]
            amount = inv.outstanding if s.action == "pay" else max(1, inv.outstanding * (1 + s.pick % 9) // 10)
            paid_on = max(inv.issued_on, today - timedelta(days=s.pick % 5))
            app.record_payment(cid, inv.invoice_id, amount, min(paid_on, today), at)
        elif s.action == "overdue" and open_invoices:
            app.mark_overdue(cid, open_invoices[s.pick % len(open_invoices)].invoice_id, today)
        elif s.action == "suspend":
            app.notice_suspension(cid, today)
        elif s.action == "stop":
            app.stop_for_non_payment(cid, today)
        elif s.action == "change":
            grades = GRADES[c.service]
            app.request_change(cid, grades[s.pick % len(grades)], 10 + s.pick % 7, None, at)
        elif s.action == "notice" and s.pick % 3 == 0:
            app.notice_termination(cid, None, at)
        elif s.action == "claim":
            self.outages += 1
            start = jst(*self._ymd()) - timedelta(days=1 + s.pick % 70, hours=self.outages)
            hours = 10 + s.pick % 80
            end = min(start + timedelta(hours=hours), at)
            try:
                outage_id = app.record_outage(c.service, start, end, CAUSES[s.pick % len(CAUSES)], at).aggregate_id
            except DomainError as refused:  # spec 8: it overlaps one recorded already: claim against that one
                if "existing_outage_id" not in refused.refers_to:
                    raise
                outage_id = uuid.UUID(refused.refers_to["existing_outage_id"])
            app.claim_sla(cid, outage_id, at, s.pick % 5 != 0, s.pick % 7 != 0, "evidence")
        elif s.action == "decide" and c.claims:
            undecided = [k for k, v in c.claims.items() if v.decided is None]
            if not undecided:
                return False
            remedy = (None, Remedy.FEE_REDUCTION, Remedy.REFUND, Remedy.EXTENSION)[s.pick % 4]
            try:
                app.decide_claim(cid, sorted(undecided)[0], remedy, None, at)
            except DomainError:
                app.decide_claim(cid, sorted(undecided)[0], None, None, at)
        elif s.action == "expire":
            app.expire_trial(cid, today)
        elif s.action == "delete":
            app.delete_stored_data(cid, today)
        elif s.action == "erase":
            app.erase_contractor_data(cid, today)
        elif s.action == "privacy":
            app.answer_privacy_request(cid, ("erase", "stop_use")[s.pick % 2], at)
        elif s.action == "apply":
            app.apply_from_trial(cid, "standard", 10, (BillingCycle.MONTHLY, BillingCycle.ANNUAL)[s.pick % 2],
                                 None, at)
        elif s.action == "approve":
            app.approve(cid, at)
        elif s.action == "reject":
            app.reject(cid, "Art. 2.4.3", at)
        else:
            return False
        return True

    def _ymd(self) -> tuple[int, int, int]:
        return self.today.year, self.today.month, self.today.day
