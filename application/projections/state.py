"""Per-contract projection state: a small, serialisable fold of one contract's events.

It holds the billing ``Ledger`` without its invoices (those are rows of the invoice table,
loaded back only when an event needs them), the deadline ``Timeline`` and the undecided
SLA claims. Stored as one JSON document per contract next to the read rows it explains.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from application.projections.codec import decode_ledger, dumps, encode_ledger, loads
from domain.billing import Ledger
from domain.calendar import Month
from domain.deadlines import Timeline
from domain.sla import Coverage, OutageFacts, liability_cap
from domain.values import DATE, INSTANT, OUTAGE_CAUSE, UUID


@dataclass
class PendingClaim:
    """An SLA claim as recorded by ``SlaBreachClaimed`` (Art. 20.3), not yet decided."""

    claim_id: uuid.UUID
    outage: OutageFacts
    received_on: date
    proof_of_payment: bool
    proof_of_breach: bool
    claimed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        o = self.outage
        return {
            "claim_id": UUID.encode(self.claim_id), "outage_id": UUID.encode(o.outage_id), "service": o.service,
            "started_at": INSTANT.encode(o.started_at), "ended_at": INSTANT.encode(o.ended_at),
            "cause": OUTAGE_CAUSE.encode(o.cause), "received_on": DATE.encode(self.received_on),
            "proof_of_payment": self.proof_of_payment, "proof_of_breach": self.proof_of_breach,
            "claimed_at": INSTANT.encode(self.claimed_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PendingClaim:
        outage = OutageFacts(UUID.decode(d["outage_id"]), d["service"], INSTANT.decode(d["started_at"]),
                             INSTANT.decode(d["ended_at"]), OUTAGE_CAUSE.decode(d["cause"]))
        return cls(UUID.decode(d["claim_id"]), outage, DATE.decode(d["received_on"]), d["proof_of_payment"],
                   d["proof_of_breach"], INSTANT.decode(d["claimed_at"]))


@dataclass
class ContractProjection:
    contract_id: uuid.UUID
    version: int = 0
    position: int = 0
    customer_number: str = ""  # from Opened (contract search, issue 19)
    ledger: Ledger = field(default_factory=lambda: Ledger(uuid.UUID(int=0)))
    timeline: Timeline = field(default_factory=Timeline)
    claims: dict[str, PendingClaim] = field(default_factory=dict)

    @classmethod
    def new(cls, contract_id: uuid.UUID) -> ContractProjection:
        return cls(contract_id, ledger=Ledger(contract_id))

    def coverage(self, month: Month) -> Coverage:
        """Same rule as ``Contract.coverage_for``: the fee in force that month, trial and beta flags."""
        t = self.timeline
        return Coverage.of(self.ledger.monthly_fee(month), t.trial_started_on is not None, t.beta, t.store,
                           t.sla_eligible)

    def liability_cap(self, month: Month) -> int:
        """Art. 21.1 (``domain.sla.liability_cap``) for the coverage of ``month``."""
        return liability_cap(self.coverage(month))

    def to_json(self) -> str:
        return dumps({
            "contract_id": str(self.contract_id),
            "version": self.version,
            "position": self.position,
            "customer_number": self.customer_number,
            "ledger": encode_ledger(self.ledger),
            "timeline": self.timeline.to_dict(),
            "claims": {k: c.to_dict() for k, c in sorted(self.claims.items())},
        })

    @classmethod
    def from_json(cls, text: str) -> ContractProjection:
        d = loads(text)
        return cls(
            contract_id=uuid.UUID(d["contract_id"]),
            version=d["version"],
            position=d["position"],
            customer_number=d.get("customer_number", ""),  # docs written before contract search: backfilled
            ledger=decode_ledger(d["ledger"]),
            timeline=Timeline.from_dict(d["timeline"]),
            claims={k: PendingClaim.from_dict(c) for k, c in d["claims"].items()},
        )
