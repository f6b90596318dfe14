"""The projection: a batch of (notification id, domain event) -> row changes of every read table.

One pass folds each contract's events through its ``ContractProjection`` (billing ``Ledger``,
deadline ``Timeline``, undecided claims) and diffs what the batch changed. States are cached
in memory (LRU, bounded) between batches; the store's tracking check guarantees the cache is
only trusted while this projector is the one advancing the position, and ``reset()`` must be
called after any failed batch.

A stored event that does not decode (``UndecodableEvent`` in the batch, issue 14) stops its
aggregate only: it is recorded in ``rm_damaged`` with its position and reason, and every later
event of that aggregate is recorded there as not applied, while every other aggregate goes on.
The aggregate's read rows stay as they were before the damaged event (docs/decisions.md).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.utils import get_topic

from application.audit import RECORDS_KEY, SHREDS
from application.projections.claims import claim_doc
from application.projections.codec import encode_invoice_doc, encode_lines
from application.projections.ports import (
    Changes,
    ClaimRow,
    DamagedRow,
    DeadlineRow,
    EventTimeRow,
    InvoiceRow,
    PaymentRow,
    StalePosition,
    StateRow,
    StateSource,
)
from application.projections.state import ContractProjection, PendingClaim
from application.projections.transfers import project_transfer
from application.undecodable import UndecodableEvent
from domain.billing import Invoice, invoices_referenced
from domain.contract import Contract, ContractEvents
from domain.deadlines import DISCONTINUATION, TERMS_CHANGE_EFFECTIVE, DueAction, contract_deadlines, fold_event
from domain.policy import Policy
from domain.service_events import ServiceEvents
from domain.sla import OutageFacts
from domain.values import INSTANT

SERVICE_DEADLINES: dict[type, tuple[str, str | None, str | None]] = {
    # event class -> (deadline kind, attribute with the date, attribute with the ref); no date: clear it
    ServiceEvents.DiscontinuationAnnounced: (DISCONTINUATION.name, "discontinue_on", "service"),
    ServiceEvents.DiscontinuationCompleted: (DISCONTINUATION.name, None, None),
    ServiceEvents.TermsChangeAnnounced: (TERMS_CHANGE_EFFECTIVE.name, "effective_on", "terms_version"),
    ServiceEvents.TermsChangeTookEffect: (TERMS_CHANGE_EFFECTIVE.name, None, None),
}


NOT_APPLIED = "not applied: an earlier event of this aggregate does not decode"
# tuples made once: ``A | B`` in an ``isinstance`` builds a union on every call (every event folded)
_WRITE_OFFS = (ContractEvents.DebtWrittenOff, ContractEvents.WriteOffReversed)
_DECISIONS = (ContractEvents.CreditGranted, ContractEvents.CreditRejected)


class Projector:
    def __init__(self, policy: Policy, cache_size: int = 5_000,
                 counterparty_index: Callable[[str], str] | None = None) -> None:
        self.policy = policy
        self.cache_size = cache_size
        self.counterparty_index = counterparty_index
        self._cache: OrderedDict[uuid.UUID, ContractProjection] = OrderedDict()
        self._stopped: set[uuid.UUID] | None = None  # aggregates with an undecodable event (as committed)

    def reset(self) -> None:
        """Forget cached states (after a failed batch, a rebuild or another runner's progress)."""
        self._cache.clear()
        self._stopped = None

    # -- one batch -------------------------------------------------------------------------------
    def process(self, batch: Sequence[tuple[int, Any]], source: StateSource) -> Changes:
        changes = Changes()
        by_contract: OrderedDict[uuid.UUID, list[tuple[int, Any]]] = OrderedDict()
        service: dict[tuple[uuid.UUID, str], DeadlineRow | None] = {}
        if self._stopped is None:
            self._stopped = set(source.damaged_aggregates())
        stopped = set(self._stopped)  # committed with this batch only (a failed batch changes nothing)
        for position, event in batch:
            if isinstance(event, UndecodableEvent):
                stopped.add(event.aggregate_id)
                changes.damaged.append(DamagedRow(position, event.aggregate_id, event.version, event.event_name,
                                                  event.reason))
                continue
            aggregate_id = event.originator_id
            changes.event_times.append(EventTimeRow(position, aggregate_id, event.originator_version,
                                                    event.timestamp))
            if aggregate_id in stopped:
                changes.damaged.append(DamagedRow(position, aggregate_id, event.originator_version,
                                                  type(event).__name__, NOT_APPLIED))
                continue
            if isinstance(event, Contract.Event):
                by_contract.setdefault(aggregate_id, []).append((position, event))
            elif project_transfer(position, event, changes):  # rule book 7: the transfers table
                continue
            else:
                rule = SERVICE_DEADLINES.get(type(event))
                if rule is not None:
                    kind, date_attr, ref_attr = rule
                    service[(aggregate_id, kind)] = None if date_attr is None or ref_attr is None else DeadlineRow(
                        getattr(event, date_attr), kind, aggregate_id, str(getattr(event, ref_attr)))
        for (aggregate_id, kind), row in service.items():
            changes.deadlines_cleared.append((aggregate_id, kind))
            if row is not None:
                changes.deadlines_added.append(row)
        if by_contract:
            self._process_contracts(by_contract, source, changes)
        self._stopped = stopped
        return changes

    def _process_contracts(self, by_contract: OrderedDict[uuid.UUID, list[tuple[int, Any]]],
                           source: StateSource, changes: Changes) -> None:
        states = self._states(by_contract, source)
        self._preload_invoices(by_contract, states, source)
        for contract_id, events in by_contract.items():
            p = states[contract_id]
            before = set(contract_deadlines(p.timeline, self.policy)) if p.version else set()
            before_claims = {k: claim_doc(p, c, self.policy) for k, c in p.claims.items()}
            dirty: dict[uuid.UUID, None] = {}
            for position, event in events:
                self._fold(p, position, event, dirty, changes)
            after = set(contract_deadlines(p.timeline, self.policy))
            self._deadline_diff(contract_id, before, after, changes)
            for key, claim in sorted(p.claims.items()):
                doc = claim_doc(p, claim, self.policy)
                if before_claims.get(key) != doc:
                    changes.claims.append(ClaimRow(claim.claim_id, contract_id, "pending", doc))
            for invoice_id in dirty:
                changes.invoices.append(invoice_row(p.ledger.invoices[invoice_id], self.counterparty_index))
            changes.states.append(StateRow(contract_id, p.timeline.service, p.timeline.state, p.version,
                                           p.position, p.to_json(), p.customer_number))
            p.ledger.invoices.clear()  # persisted as rows; loaded back when an event needs them
            self._remember(p)

    def _states(self, by_contract: OrderedDict[uuid.UUID, list[tuple[int, Any]]],
                source: StateSource) -> dict[uuid.UUID, ContractProjection]:
        states: dict[uuid.UUID, ContractProjection] = {}
        missing: list[uuid.UUID] = []
        for contract_id in by_contract:
            cached = self._cache.get(contract_id)
            if cached is None:
                missing.append(contract_id)
            else:
                states[contract_id] = cached
        loaded = source.load_states(missing) if missing else {}
        for contract_id in missing:
            doc = loaded.get(contract_id)
            states[contract_id] = (ContractProjection.from_json(doc) if doc is not None
                                   else ContractProjection.new(contract_id))
        for contract_id, events in by_contract.items():
            first_version = events[0][1].originator_version
            if states[contract_id].version != first_version - 1:
                self.reset()
                raise StalePosition(f"contract {contract_id}: state at version {states[contract_id].version}, "
                                    f"next event is version {first_version}")
        return states

    @staticmethod
    def _preload_invoices(by_contract: OrderedDict[uuid.UUID, list[tuple[int, Any]]],
                          states: dict[uuid.UUID, ContractProjection], source: StateSource) -> None:
        """Invoices issued in earlier batches that this batch's events touch (payments, voids,
        waivers, and the originals of corrections, credit notes and billed interest)."""
        wanted: list[uuid.UUID] = []
        for _, events in by_contract.items():
            for _, event in events:
                wanted.extend(invoices_referenced(event))
        found: list[Invoice] = source.load_invoices(wanted) if wanted else []
        for invoice in found:
            ledger = states[invoice.contract_id].ledger
            ledger.invoices.setdefault(invoice.invoice_id, invoice)

    def _fold(self, p: ContractProjection, position: int, event: Any, dirty: dict[uuid.UUID, None],
              changes: Changes) -> None:
        if event.originator_version != p.version + 1:
            raise StalePosition(f"contract {p.contract_id}: event version {event.originator_version} "
                                f"after state version {p.version}")
        for invoice_id in fold_event(p.ledger, p.timeline, event):
            dirty[invoice_id] = None
        if isinstance(event, ContractEvents.Opened):
            p.customer_number = event.customer_number
        if RECORDS_KEY in SHREDS.get(get_topic(type(event)), ()):  # the key sealing the recipient goes
            changes.counterparties_erased.append(p.contract_id)  # erased names are not searchable
        if isinstance(event, ContractEvents.PaymentReceived):
            changes.payments.append(PaymentRow(position, event.invoice_id, p.contract_id, event.paid_on,
                                               event.amount, getattr(event, "source", "transfer")))
        elif isinstance(event, ContractEvents.PaymentReversed):  # rule book 7: a negative row on the original day
            changes.payments.append(PaymentRow(position, event.invoice_id, p.contract_id, event.paid_on,
                                               -event.amount, "reversal"))
        elif isinstance(event, _WRITE_OFFS):
            amount = event.amount if isinstance(event, ContractEvents.DebtWrittenOff) else -event.amount
            changes.payments.append(PaymentRow(position, event.invoice_id, p.contract_id, event.written_off_on,
                                               amount, "write_off"))
        if isinstance(event, ContractEvents.SlaBreachClaimed):
            outage = OutageFacts(event.outage_id, event.service, event.started_at, event.ended_at, event.cause)
            p.claims[str(event.claim_id)] = PendingClaim(event.claim_id, outage, event.received_on,
                                                         event.proof_of_payment, event.proof_of_breach, event.at)
        elif isinstance(event, _DECISIONS):
            claim = p.claims.pop(str(event.claim_id), None)
            if claim is not None:
                if isinstance(event, ContractEvents.CreditGranted):
                    status = "granted"
                    decision = {"status": status, "remedy": event.remedy, "amount": event.amount,
                                "credit_days": event.credit_days, "decided_at": INSTANT.encode(event.at)}
                else:
                    status = "rejected"
                    decision = {"status": status, "reason": event.reason, "decided_at": INSTANT.encode(event.at)}
                changes.claims.append(ClaimRow(claim.claim_id, p.contract_id, status,
                                               claim_doc(p, claim, self.policy, status, decision)))
        p.version, p.position = event.originator_version, position

    @staticmethod
    def _deadline_diff(contract_id: uuid.UUID, before: set[DueAction], after: set[DueAction],
                       changes: Changes) -> None:
        for gone in sorted(before - after):
            changes.deadlines_removed.append((contract_id, gone.kind, gone.ref))
        for new in sorted(after - before):
            changes.deadlines_added.append(DeadlineRow(new.due_on, new.kind, contract_id, new.ref))

    def _remember(self, p: ContractProjection) -> None:
        self._cache[p.contract_id] = p
        self._cache.move_to_end(p.contract_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def invoice_row(invoice: Invoice, counterparty_index: Callable[[str], str] | None = None) -> InvoiceRow:
    """The read row of an invoice. An invoice loaded back from the read table has no recipient:
    its row's ``counterparty`` is then left as it was (empty here, kept by the upsert)."""
    total, paid = invoice.total, invoice.paid
    counterparty = ""
    if invoice.recipient is not None and counterparty_index is not None:
        counterparty = counterparty_index(invoice.recipient)
    return InvoiceRow(
        invoice_id=invoice.invoice_id,
        contract_id=invoice.contract_id,
        kind=invoice.kind,
        period=invoice.period,
        month=str(invoice.month),
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        total=total,
        paid=paid,
        outstanding=invoice.outstanding,
        refunded=invoice.refunded,
        lines=encode_lines(invoice.lines),
        number=invoice.number,
        document_type=invoice.document_type,
        counterparty=counterparty,
        doc=encode_invoice_doc(invoice),
    )
