"""Outage-credit rows (spec 8, Art. 20, 21.1): each claim with its assessment and decision.

Eligibility comes from ``domain.sla.assess_claim`` with the coverage of the breach month taken
from the projection's Ledger: the same call the Contract aggregate makes.
"""

from __future__ import annotations

from typing import Any

from application.projections.codec import dumps
from application.projections.state import ContractProjection, PendingClaim
from domain.calendar import Month
from domain.policy import Policy
from domain.sla import assess_claim
from domain.values import DATE, MONTH


def claim_doc(p: ContractProjection, claim: PendingClaim, policy: Policy, status: str = "pending",
              decision: dict[str, Any] | None = None) -> str:
    """The claim as the auditor sees it: facts, eligibility (with the article when not),
    credit days, minimum / maximum amount, liability cap, and the remedy granted if decided."""
    month = Month.of(claim.outage.breach_date)
    a = assess_claim(claim.outage, claim.received_on, claim.proof_of_payment, claim.proof_of_breach,
                     p.coverage(month), policy.sla_claim_window_days)
    doc: dict[str, Any] = {
        "contract_id": str(p.contract_id),
        **claim.to_dict(),
        "outage_hours": int(claim.outage.duration.total_seconds() // 3600),
        "eligible": a.eligible,
        "reason": a.reason,
        "breach_date": DATE.encode_optional(a.breach_date),
        "breach_month": MONTH.encode_optional(a.breach_month),
        "credit_days": a.credit_days,
        "minimum": a.minimum,
        "maximum": a.maximum,
        "liability_cap": a.liability_cap,
        "status": status,
        "remedy": None,
        "amount": None,
        "decided_at": None,
    }
    if decision:
        doc.update(decision)
    return dumps(doc)
