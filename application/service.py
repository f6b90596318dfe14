"""The contracts Application: every command is load -> call -> save, atomically.

A refused command raises before ``save`` and so stores nothing. A concurrent writer
surfaces as ``ConcurrencyConflict``; ``expected_version`` gives callers If-Match semantics.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, StoredEvent, Transcoder

from application.actors import stamp
from application.aggregate_locks import AggregateLocks, LockedRepository, fold
from application.aggregate_state import private_copy, register_state_transcodings
from application.command_receipts import CommandReceipt, current_scope, new_receipt, receipt_id
from application.ports import BulkEventReader
from application.settlement import SettlementCommands
from application.transcodings import FastJSONTranscoder, register_all
from domain.billing import InvoiceLine
from domain.calendar import BusinessCalendar, Month, jst_date, jst_start, require_aware
from domain.catalog import Catalog
from domain.contract import BillingCycle, Contract
from domain.errors import ConcurrencyConflict, DomainError, InvalidInput, NotFound, RuleViolation
from domain.invoice_numbers import InvoiceSequence, NumberBook
from domain.policy import Policy
from domain.service_events import Outage, OutageLog, ServiceDiscontinuation, TermsChange
from domain.settlement import CustomerAccount
from domain.sla import ClaimAssessment, OutageCause, Remedy

A = TypeVar("A", bound=Aggregate)
ISSUE_ATTEMPTS = 20  # an issuing command races only on the issuer's number sequence: retry that
CLAIM_NAMESPACE = uuid.UUID("4c0e9d7b-7a55-4f61-8d2e-91b3a6c5e803")
_OUTAGE_ATTEMPTS = 5
_OUTAGE_RECORDED_TOPIC = f"{Outage.__module__}:{Outage.__qualname__}.OutageRecorded"


class _Unverified(Exception):
    """A command on a cached state that stores nothing: run again on the stored state."""


@dataclass(frozen=True)
class CommandResult:
    """What a command did: the aggregate, its new version and the last notification position."""

    aggregate_id: uuid.UUID
    version: int
    position: int | None  # notification id of the last stored event, None if nothing stored
    events: int


class _Collected(ProcessingEvent[uuid.UUID]):
    """The library's ``ProcessingEvent`` whose ``collect_events`` takes an ``Aggregate`` (the
    library's class, which every aggregate here subclasses) by a plain class check: the library
    asks ``isinstance`` of two runtime-checkable protocol classes per object, slow on CPython
    3.11 (issue 21: 22 -> 7 us per collected aggregate, ~5 % of a warm command's CPU).
    Anything else goes to the library's method; the events keep the objects' order."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, Aggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            elif obj is not None:
                super().collect_events(obj)
        self.saved_kwargs.update(kwargs)


class ContractsApplication(SettlementCommands, Application[uuid.UUID]):
    name = "contracts"
    verify_cached = False
    """True where other processes command the same contracts all the time (``contracts serve
    --workers N``): a contract command first reads the events stored after its cached version (one
    indexed read) and applies them to the cached contract, instead of finding a stale state out by
    the conflict on save (issue 21: with two workers half the POSTs did, at the cost of an act thrown
    away, a group-commit batch failed and run again one command at a time, and a whole-history
    load; then a read of the stored version and, when stale, of the whole history).
    False: the cache is trusted (one process, or rare writes by others)."""

    def __init__(self, env: Mapping[str, str] | None, catalog: Catalog, policy: Policy,
                 calendar: BusinessCalendar) -> None:
        super().__init__(env=env)
        self.catalog, self.policy, self.calendar = catalog, policy, calendar

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """The library's save (the same steps: collect, record, snapshots, notify), after every
        aggregate's new events record their actor (section 13: the current one unless a caller
        stamped them first, as the sweep does per deadline); the events of this package's
        aggregates are collected without the library's runtime ``Protocol`` checks
        (``_Collected``)."""
        for obj in objs:
            if isinstance(obj, Aggregate):
                stamp(obj)
        processing_event = _Collected()
        processing_event.collect_events(*objs, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # the library's deprecated hook, as its save calls it
        return recordings

    def construct_repository(self) -> Repository[uuid.UUID]:
        """The library's repository, its settings as the library reads them, whose cached aggregates
        are used under their lock (``application.aggregate_locks``: commands work on the cached
        contract itself, issue 21)."""
        return LockedRepository.adopt(super().construct_repository())

    @property
    def _locks(self) -> AggregateLocks:
        repository = self.repository
        assert isinstance(repository, LockedRepository)
        return repository.locks

    def construct_transcoder(self) -> Transcoder:
        """The library's ``JSONTranscoder`` decoding with orjson (``FastJSONTranscoder``: the same
        objects, the same stored bytes), unless ``TRANSCODER_TOPIC`` names another."""
        if self.env.get("TRANSCODER_TOPIC"):
            return super().construct_transcoder()
        transcoder = FastJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_all(transcoder)
        register_state_transcodings(transcoder)  # snapshots and cache copies (application.aggregate_state)

    # -- plumbing --------------------------------------------------------------------------------
    def _load(self, cls: type[A], aggregate_id: uuid.UUID, what: str) -> A:
        if not self.repository.cache:
            return self._loaded(cls, aggregate_id, what)
        with self._locks.hold(aggregate_id) as held:  # the cached object is copied whole, no command half-applied
            if held:
                return private_copy(self._loaded(cls, aggregate_id, what))
        return self._stored(cls, aggregate_id, what)  # busy for long: read past the cache

    def _loaded(self, cls: type[A], aggregate_id: uuid.UUID, what: str) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, deepcopy_from_cache=False, projector_func=fold)
        except AggregateNotFoundError:
            raise NotFound("rule book 3", f"no {what} with this id", f"{what}_id") from None
        if not isinstance(aggregate, cls):
            raise NotFound("rule book 3", f"no {what} with this id", f"{what}_id")
        return aggregate

    def _commit(self, *aggregates: Aggregate) -> CommandResult:
        scope = current_scope()
        receipt = [new_receipt(scope, aggregates[0].id, aggregates[0].version)] if scope is not None else []
        try:
            recordings = self.save(*aggregates, *receipt)
        except IntegrityError:
            raise ConcurrencyConflict("rule book 3", "the aggregate was changed concurrently; reload and retry",
                                      None) from None
        for aggregate in aggregates:  # committed: the cached state of each contract (see _contract_command)
            if isinstance(aggregate, Contract):
                self._remember(aggregate)
        last = aggregates[0]
        own = [r for r in recordings if r.domain_event.originator_id != (receipt[0].id if receipt else None)]
        position = own[-1].notification.id if own else None  # read-your-writes: the whole transaction
        events = sum(1 for r in own if r.domain_event.originator_id == last.id)  # the command's aggregate
        return CommandResult(last.id, last.version, position, events)

    def find_receipt(self, key: str) -> CommandReceipt | None:
        """The receipt of a command already applied under ``key`` (see application.command_receipts):
        the aggregate, its version then, and the fingerprint of the request that applied it."""
        try:
            receipt: Aggregate = self.repository.get(receipt_id(key))
        except AggregateNotFoundError:
            return None
        return receipt if isinstance(receipt, CommandReceipt) else None

    def _contract_command(self, contract_id: uuid.UUID, expected_version: int | None,
                          action: Callable[[Contract], Any]) -> CommandResult:
        """Load, act, commit, holding the contract's lock in this process throughout
        (``application.aggregate_locks``). The contract is this process's cached object itself,
        neither copied nor, unless ``verify_cached``, checked against the store (issue 21: no private
        copy, no fast-forward read; with ``verify_cached`` it is brought up to date first,
        ``_brought_up_to_date``); a cached state can be stale only if another process (or a command
        that does not pass here) wrote the contract since, and then every outcome that depends on it is decided again
        on the stored events: a conflict on save (the store refuses the stale version), a refusal,
        an If-Match mismatch, and a command that would store nothing (nothing to conflict with).
        Each evicts the cached contract (which the command may have changed) and runs the command
        once more on the state read from the store; any other failure evicts it too. A lock that is
        not free in time (``AggregateLocks.wait``) leaves the cache to its holder: the command runs
        on the stored state, and the store decides between the two writes."""
        if not self.repository.cache:
            return self._act(self.get_contract(contract_id), expected_version, action, verified=True)
        with self._locks.hold(contract_id) as held:
            trusted = self._trusted(Contract, contract_id) if held else None
            if trusted is not None and self.verify_cached:
                trusted = self._brought_up_to_date(trusted)
            if trusted is not None:
                try:
                    return self._act(trusted, expected_version, action, verified=False)
                except (DomainError, _Unverified):
                    self._evict(contract_id)  # stale or not: decide on the stored state
                except BaseException:
                    self._evict(contract_id)  # half-applied, or not stored: not the cached state
                    raise
            # not cached (any more): the stored state, this command's own object until it commits
            # (``_commit`` caches it then); a failure leaves nothing cached
            return self._act(self._stored_contract(contract_id), expected_version, action, verified=True)

    def _brought_up_to_date(self, cached: Contract) -> Contract | None:
        """``verify_cached``: the cached contract with the events stored after its version applied
        to it in place (what another process wrote since; the caller holds its lock), read in one
        indexed query that finds nothing when it is current, instead of a read of the stored
        version and, when stale, of the whole history. None (evicted) if they do not apply."""
        newer = self.events.get(cached.id, gt=cached.version)
        try:
            return cast(Contract, fold(cached, newer))
        except Exception:  # noqa: BLE001 - half-applied: decided on the stored state (the caller's fallback)
            self._evict(cached.id)
            return None
        except BaseException:  # an interrupt midway: no half-applied contract stays cached
            self._evict(cached.id)
            raise

    def _act(self, contract: Contract, expected_version: int | None, action: Callable[[Contract], Any], *,
             verified: bool) -> CommandResult:
        if expected_version is not None and expected_version != contract.version:
            raise ConcurrencyConflict("rule book 3",
                                      f"contract is at version {contract.version}, not the If-Match version",
                                      "If-Match")
        action(contract)
        if not verified and not contract.pending_events:
            raise _Unverified  # a no-op: the save would not show whether the state was current
        return self._commit(contract)

    def _stored_contract(self, contract_id: uuid.UUID) -> Contract:
        return self._stored(Contract, contract_id, "contract")

    def _stored(self, cls: type[A], aggregate_id: uuid.UUID, what: str) -> A:
        """The aggregate as stored, read past the aggregate cache (neither read nor filled): an
        object nobody else holds, so a command needs no copy of it."""
        aggregate = fold(None, self.events.get(aggregate_id))
        if not isinstance(aggregate, cls):
            raise NotFound("rule book 3", f"no {what} with this id", f"{what}_id")
        return aggregate

    def _trusted(self, cls: type[A], aggregate_id: uuid.UUID) -> A | None:
        """The cached aggregate itself as it is (no fast-forward, no copy), or None: for a caller
        holding its lock."""
        cache = self.repository.cache
        if cache is None:
            return None
        try:
            cached = cache.get(aggregate_id)
        except KeyError:
            return None
        return cached if isinstance(cached, cls) else None

    def _evict(self, aggregate_id: uuid.UUID) -> None:
        """No lock needed: whoever holds the cached object keeps it, and puts back only what it stored."""
        if self.repository.cache is not None:
            try:
                self.repository.cache.get(aggregate_id, evict=True)
            except KeyError:
                pass

    def _remember(self, aggregate: Aggregate) -> None:
        """After a commit: the saved aggregate (no longer used by the command) is the cached state,
        unless the cache already holds a later version, or another command holds the aggregate for
        long (its cached object is then refused by the store if stale, and evicted)."""
        cache = self.repository.cache
        if cache is None:
            return
        with self._locks.hold(aggregate.id) as held:
            if not held:
                return
            try:
                cached = cache.get(aggregate.id)
            except KeyError:
                cached = None
            if cached is None or cached.version < aggregate.version:
                cache.put(aggregate.id, aggregate)

    # -- invoice numbers (rule book 6.1) -----------------------------------------------------------
    def number_book(self) -> NumberBook:
        """Numbers for one transaction, drawn from the issuer's ``InvoiceSequence``."""
        registration = self.policy.issuer.registration_number if self.policy.issuer is not None else ""

        def sequence_for(scope: str) -> InvoiceSequence:
            try:
                return self._load(InvoiceSequence, InvoiceSequence.create_id(registration, scope), "sequence")
            except NotFound:
                return InvoiceSequence.start(registration, scope)
        return NumberBook(self.policy.invoice_number_format, registration, sequence_for)

    def _issuing_command(self, contract_id: uuid.UUID, expected_version: int | None,
                         action: Callable[[Contract, NumberBook], Any], at: datetime | None = None,
                         settle_on: date | None = None,
                         also: Callable[[Contract, Any], list[Aggregate]] | None = None,
                         credit_at: datetime | None = None) -> CommandResult:
        """A contract command that may issue invoices: the contract and the sequence entries of the
        numbers it used are saved in one transaction; a writer that took the same numbers first
        makes it start again from a fresh load (no gap, no reuse). ``also(contract, action's result)``:
        other aggregates the command changed, saved in the same transaction. Invoices it issued are
        then paid from the customer's credit balance (rule book 7, ``_credit_new_invoices``; at
        ``credit_at``, else ``at``)."""
        for attempt in range(1, ISSUE_ATTEMPTS + 1):
            contract = self.get_contract(contract_id)
            if expected_version is not None and expected_version != contract.version:
                raise ConcurrencyConflict("rule book 3", f"contract is at version {contract.version}, "
                                          f"not {expected_version}", "If-Match")
            issued_before = set(contract.ledger.invoices)
            book = self.number_book()
            done = action(contract, book)
            if settle_on is not None:  # an ended contract: credits and interest are billed now (Contract.settle)
                contract.settle(settle_on, self.policy, book, at)
            others = also(contract, done) if also is not None else []
            try:
                result = self._commit(contract, *others, *book.close(at))
            except ConcurrencyConflict:
                if attempt == ISSUE_ATTEMPTS:
                    raise
                continue
            return self._credit_new_invoices(contract, issued_before, result, credit_at or at)
        raise AssertionError("unreachable")

    def _credit_new_invoices(self, contract: Contract, issued_before: set[uuid.UUID], result: CommandResult,
                             at: datetime | None) -> CommandResult:
        """Rule book 7: invoices the command issued with something to pay are paid from the customer's
        credit balance (``credit_after_issue``, a follow-up transaction as the same actor), at ``at``
        or, for a command without one (the scheduler's), at the start of the new invoices' issue day.
        The answer is the contract as it is then (version and position after the credit step)."""
        new = [i for iid, i in contract.ledger.invoices.items() if iid not in issued_before and i.outstanding > 0]
        if not new or not contract.customer_number:
            return result
        when = at if at is not None else jst_start(max(i.issued_on for i in new))
        applied = self.credit_after_issue([contract.customer_number], when)
        if not applied:
            return result
        current = self.get_contract(contract.id)
        position = max((r.position for r in applied if r.position is not None), default=result.position)
        return CommandResult(contract.id, current.version, position, result.events + current.version - result.version)

    # -- queries ---------------------------------------------------------------------------------
    def get_contract(self, contract_id: uuid.UUID, version: int | None = None) -> Contract:
        if version is None:
            return self._load(Contract, contract_id, "contract")
        try:
            contract: Aggregate = self.repository.get(contract_id, version=version)
        except AggregateNotFoundError:
            raise NotFound("rule book 3", "no contract with this id", "contract_id") from None
        if not isinstance(contract, Contract):
            raise NotFound("rule book 3", "no contract with this id", "contract_id")
        return contract

    def get_contracts(self, contract_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contract | Exception]:
        """The current state of many contracts at once (the sweep's chunks): one query for all
        their events where the store allows (``BulkEventReader``), else one load each.

        An id without a contract is left out; a contract whose events do not decode maps to
        the exception, so one bad contract does not fail the others. The aggregate cache is
        neither read nor filled: bulk reads are of contracts not touched recently."""
        recorder = self.recorder
        if not isinstance(recorder, BulkEventReader):
            loaded: dict[uuid.UUID, Contract | Exception] = {}
            for cid in contract_ids:
                try:
                    loaded[cid] = self.get_contract(cid)
                except NotFound:
                    continue
                except Exception as exc:  # noqa: BLE001 - reported per contract, as below
                    loaded[cid] = exc
            return loaded
        grouped: dict[uuid.UUID, list[StoredEvent]] = {}
        for stored in recorder.select_events_of(contract_ids):
            oid = stored.originator_id  # a UUID from the stores here: converted only if not one
            grouped.setdefault(oid if type(oid) is uuid.UUID else uuid.UUID(str(oid)), []).append(stored)
        found: dict[uuid.UUID, Contract | Exception] = {}
        for cid, stored_events in grouped.items():
            try:
                aggregate: Any = None
                for stored in stored_events:
                    aggregate = self.mapper.to_domain_event(stored).mutate(aggregate)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - reported per contract
                found[cid] = exc
                continue
            if isinstance(aggregate, Contract):
                found[cid] = aggregate
        return found

    def get_outage(self, outage_id: uuid.UUID) -> Outage:
        return self._load(Outage, outage_id, "outage")

    def stored_version(self, aggregate_id: uuid.UUID) -> int | None:
        """The version of the aggregate's last stored event (None: nothing stored): one indexed
        read, nothing decoded; what a reader checks a view it kept against (api.views)."""
        last = self.recorder.select_events(aggregate_id, desc=True, limit=1)
        return last[0].originator_version if last else None

    def contract_events(self, contract_id: uuid.UUID) -> list[Any]:
        self.get_contract(contract_id)
        return list(self.events.get(contract_id))

    def iter_aggregate_ids(self, topic_suffix: str) -> Iterator[uuid.UUID]:
        """Ids of aggregates whose creation event topic ends with ``topic_suffix``.

        Reads the whole notification log: a slow path for small stores and tests; the
        projections keep indexed lists for production use.
        """
        start = 1
        while True:
            batch = self.recorder.select_notifications(start=start, limit=500)
            if not batch:
                return
            for n in batch:
                if n.originator_version == 1 and n.topic.endswith(topic_suffix):
                    yield uuid.UUID(str(n.originator_id))
            start = batch[-1].id + 1

    # -- application, review, trial (Art. 2, 5) ---------------------------------------------------
    def open_contract(self, customer_number: str, service: str, grade: str, users: int,
                      contractor: dict[str, str], at: datetime, *, trial: bool = False,
                      cycle: BillingCycle | None = None, reference: str = "") -> CommandResult:
        require_aware(at)
        plan = self.catalog.plan(service, grade)
        generation = 0
        while True:  # the first contract of this customer, service and reference that has not ended
            contract = Contract.open(customer_number, service, reference, generation)
            if trial:
                contract.start_trial(plan, users, contractor, at)
            else:
                if cycle is None:
                    raise InvalidInput("Art. 8", "billing_cycle (monthly or annual) is required", "billing_cycle")
                contract.apply(plan, cycle, users, contractor, at)
            for attempt in range(3):  # the customer's account is shared by their contracts (rule book 7)
                account = self.find_account(customer_number) or CustomerAccount(customer_number=customer_number)
                account.register(contract.id)
                try:
                    return self._commit(contract, account)
                except ConcurrencyConflict:
                    if self._exists(contract.id):
                        break  # this generation is taken: ended (next one) or open (refused below)
                    if attempt == 2:
                        raise RuleViolation("Art. 2.1", "this customer already has a contract for this service "
                                            "with this reference that has not ended", "reference") from None
            if not self.get_contract(contract.id).ended:
                raise RuleViolation("Art. 2.1", "this customer already has a contract for this service with "
                                    "this reference that has not ended", "reference")
            generation += 1

    def apply_from_trial(self, contract_id: uuid.UUID, grade: str, users: int, cycle: BillingCycle,
                         contractor: dict[str, str] | None, at: datetime,
                         expected_version: int | None = None) -> CommandResult:
        def act(c: Contract) -> None:
            c.apply(self.catalog.plan(c.service, grade), cycle, users, contractor, at)
        return self._contract_command(contract_id, expected_version, act)

    def approve(self, contract_id: uuid.UUID, at: datetime, expected_version: int | None = None) -> CommandResult:
        return self._contract_command(contract_id, expected_version, lambda c: c.approve(at))

    def reject(self, contract_id: uuid.UUID, article: str, at: datetime,
               expected_version: int | None = None) -> CommandResult:
        return self._contract_command(contract_id, expected_version, lambda c: c.reject(article, at, self.policy))

    def expire_trial(self, contract_id: uuid.UUID, on: date) -> CommandResult:
        return self._contract_command(contract_id, None, lambda c: c.expire_trial(on, self.policy))

    # -- periods and changes (Art. 8, 10) ---------------------------------------------------------
    def advance(self, contract_id: uuid.UUID, month: Month, at: datetime | None = None) -> CommandResult:
        """Run the contract's month starts up to ``month`` (idempotent; catches up in order). ``at``: when
        an operator runs it (the credit balance then pays the new invoices as of that instant, rule
        book 7); the scheduler's run has none (as of the issue day)."""
        return self._issuing_command(contract_id, None, lambda c, book: c.advance_to(month, self.policy, book),
                                     credit_at=at)

    def request_change(self, contract_id: uuid.UUID, grade: str | None, users: int | None,
                       requested_month: Month | None, at: datetime,
                       expected_version: int | None = None) -> CommandResult:
        if grade is None and users is None:
            raise InvalidInput("Art. 10.1", "give a new grade, a new user count, or both", "grade")

        def act(c: Contract) -> None:
            plan = self.catalog.plan(c.service, grade) if grade is not None else None
            c.request_change(plan, users, requested_month, at, self.calendar)
        return self._contract_command(contract_id, expected_version, act)

    def notice_termination(self, contract_id: uuid.UUID, requested_month: Month | None, at: datetime,
                           expected_version: int | None = None) -> CommandResult:
        return self._contract_command(
            contract_id, expected_version, lambda c: c.notice_termination(requested_month, at, self.calendar))

    # -- payments (Art. 9) ------------------------------------------------------------------------
    def record_payment(self, contract_id: uuid.UUID, invoice_id: uuid.UUID, amount: int, paid_on: date,
                       at: datetime, expected_version: int | None = None,
                       reference: str | None = None) -> CommandResult:
        return self._issuing_command(
            contract_id, expected_version, lambda c, _: c.receive_payment(invoice_id, amount, paid_on, at, reference),
            at, settle_on=jst_date(at))

    def mark_overdue(self, contract_id: uuid.UUID, invoice_id: uuid.UUID, on: date) -> CommandResult:
        return self._contract_command(contract_id, None, lambda c: c.mark_overdue(invoice_id, on))

    def remind_payment(self, contract_id: uuid.UUID, invoice_id: uuid.UUID, stage: str, on: date) -> CommandResult:
        """Rule book 7: the payment reminder of ``stage`` (before or after the due date) for an unpaid invoice."""
        return self._contract_command(contract_id, None, lambda c: c.remind_payment(invoice_id, stage, on, self.policy))

    def notice_suspension(self, contract_id: uuid.UUID, on: date) -> CommandResult:
        return self._contract_command(contract_id, None, lambda c: c.notice_suspension(on, self.policy))

    def stop_for_non_payment(self, contract_id: uuid.UUID, on: date) -> CommandResult:
        return self._issuing_command(contract_id, None, lambda c, _: c.stop_for_non_payment(on, self.policy),
                                     settle_on=on)

    # -- termination (Art. 18, 23, 24, 28) ----------------------------------------------------------
    def terminate_for_cause(self, contract_id: uuid.UUID, article: str, at: datetime,
                            expected_version: int | None = None) -> CommandResult:
        return self._issuing_command(
            contract_id, expected_version, lambda c, _: c.terminate_for_cause(article, at, self.policy), at,
            settle_on=jst_date(at))

    def announce_discontinuation(self, service: str, discontinue_on: date, at: datetime) -> CommandResult:
        self.catalog_service(service)
        item = ServiceDiscontinuation.announce(service, discontinue_on, at, self.policy.discontinuation_notice_months)
        try:
            return self._commit(item)
        except ConcurrencyConflict:
            raise RuleViolation("Art. 18", f"discontinuation of {service} already announced") from None

    def terminate_for_discontinuation(self, contract_id: uuid.UUID, service: str) -> CommandResult:
        item = self._load(ServiceDiscontinuation, ServiceDiscontinuation.create_id(service), "discontinuation")

        def act(c: Contract) -> None:
            if c.service != item.service:  # Art. 18 ends the contracts of the discontinued service only
                raise RuleViolation("Art. 18", f"the contract is for {c.service}, not the discontinued {item.service}")
            c.terminate_for_discontinuation(item.discontinue_on, self.policy)
        return self._issuing_command(contract_id, None, lambda c, _: act(c), settle_on=item.discontinue_on)

    def complete_discontinuation(self, service: str, on: date) -> CommandResult:
        item = self._load(ServiceDiscontinuation, ServiceDiscontinuation.create_id(service), "discontinuation")
        item.complete(on)
        return self._commit(item)

    def announce_terms_change(self, version: str, effective_on: date, summary: str, at: datetime) -> CommandResult:
        item = TermsChange.announce(version, effective_on, summary, at)
        try:
            return self._commit(item)
        except ConcurrencyConflict:
            raise RuleViolation("Art. 28", "this terms version is already announced", "version") from None

    def terms_change_takes_effect(self, version: str, on: date) -> CommandResult:
        item = self._load(TermsChange, TermsChange.create_id(version), "terms_change")
        item.take_effect(on)
        return self._commit(item)

    def terminate_for_terms_change(self, contract_id: uuid.UUID, version: str, at: datetime,
                                   expected_version: int | None = None) -> CommandResult:
        change = self._load(TermsChange, TermsChange.create_id(version), "terms_change")
        return self._issuing_command(
            contract_id, expected_version,
            lambda c, _: c.terminate_for_terms_change(change.effective_on, at, self.policy), at,
            settle_on=jst_date(at))

    # -- SLA (Art. 20) -------------------------------------------------------------------------------
    def record_outage(self, service: str, started_at: datetime, ended_at: datetime, cause: OutageCause,
                      at: datetime) -> CommandResult:
        """Spec 8: recorded once; an outage overlapping one already recorded for the service is
        refused (``OutageLog.admit``), naming the recorded one. The service's log is saved in the
        same transaction as the outage: a concurrent writer makes one of the two collide, and the
        loser is checked again against the log it lost to."""
        self.catalog_service(service)
        for _ in range(_OUTAGE_ATTEMPTS):
            outage = Outage.record(service, started_at, ended_at, cause, at)
            log = self._outage_log(service)
            log.admit(outage)
            try:
                return self._commit(outage, log)
            except ConcurrencyConflict:
                continue  # another writer recorded an outage of this service first: check again
        raise ConcurrencyConflict("Art. 20", "outages of this service are being recorded concurrently; retry", None)

    def _outage_log(self, service: str) -> OutageLog:
        """The service's outage log; the first time, opened with the outages recorded before it existed."""
        try:
            return self._load(OutageLog, OutageLog.create_id(service), "outage_log")
        except NotFound:
            if not self._exists(OutageLog.create_id(service)):
                return OutageLog.open(service, self._recorded_outages(service))
            raise NotFound("Art. 20", "no outage log for this service", "service") from None

    def _recorded_outages(self, service: str) -> Iterator[tuple[uuid.UUID, datetime, datetime]]:
        """Outages stored before the service had a log (a scan of their creation events, once per service)."""
        start = 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=500, topics=[_OUTAGE_RECORDED_TOPIC])
            for n in page:
                recorded = self.mapper.to_domain_event(n)
                if getattr(recorded, "service", None) == service:
                    yield uuid.UUID(str(n.originator_id)), recorded.started_at, recorded.ended_at  # type: ignore[attr-defined]
            if len(page) < 500:
                return
            start = page[-1].id + 1

    @staticmethod
    def claim_id(contract_id: uuid.UUID, outage_id: uuid.UUID) -> uuid.UUID:
        return uuid.uuid5(CLAIM_NAMESPACE, f"{contract_id}\x1f{outage_id}")

    def claim_sla(self, contract_id: uuid.UUID, outage_id: uuid.UUID, at: datetime, proof_of_payment: bool,
                  proof_of_breach: bool, evidence: str = "",
                  expected_version: int | None = None) -> tuple[CommandResult, ClaimAssessment]:
        outage = self.get_outage(outage_id)
        claim_id = self.claim_id(contract_id, outage_id)
        assessed: list[ClaimAssessment] = []
        result = self._contract_command(contract_id, expected_version, lambda c: assessed.append(
            c.claim_sla(claim_id, outage.facts, at, proof_of_payment, proof_of_breach, evidence, self.policy)))
        return result, assessed[-1]  # the run that committed (see _contract_command)

    def decide_claim(self, contract_id: uuid.UUID, claim_id: uuid.UUID, remedy: Remedy | None,
                     amount: int | None, at: datetime, expected_version: int | None = None) -> CommandResult:
        return self._issuing_command(
            contract_id, expected_version,
            lambda c, book: c.decide_claim(claim_id, remedy, amount, at, self.policy, book), at)

    # -- corrections, credit notes, late interest (rule book 6, 6.1) ---------------------------------
    def void_invoice(self, contract_id: uuid.UUID, invoice_id: uuid.UUID, reason: str, at: datetime,
                     expected_version: int | None = None) -> CommandResult:
        return self._issuing_command(
            contract_id, expected_version,
            lambda c, book: c.void_invoice(invoice_id, reason, at, self.policy, book), at)

    def correct_invoice(self, contract_id: uuid.UUID, invoice_id: uuid.UUID, lines: list[InvoiceLine],
                        reason: str, at: datetime, expected_version: int | None = None) -> CommandResult:
        return self._issuing_command(
            contract_id, expected_version,
            lambda c, book: c.correct_invoice(invoice_id, lines, reason, at, self.policy, book), at)

    def issue_credit_note(self, contract_id: uuid.UUID, invoice_id: uuid.UUID, amount: int, reason: str,
                          at: datetime, expected_version: int | None = None,
                          rate: Decimal | None = None) -> CommandResult:
        """Rule book 6.1 and 7: a credit note against an invoice. What it returns beyond what was
        still owed (the invoice's ``refund_due`` grows) was paid already: it becomes the customer's
        credit balance, in the same transaction, applied to their next invoices or refunded by an
        operator like an overpayment."""
        before: dict[str, int] = {}

        def act(c: Contract, book: NumberBook) -> uuid.UUID:
            before["refund_due"] = c.ledger.invoices[invoice_id].refund_due if invoice_id in c.ledger.invoices else 0
            return c.issue_credit_note(invoice_id, amount, reason, at, self.policy, book, rate)

        def to_credit(c: Contract, note_id: uuid.UUID) -> list[Aggregate]:
            excess = c.ledger.invoices[invoice_id].refund_due - before["refund_due"]
            if excess <= 0 or not c.customer_number:
                return []
            account = self.find_account(c.customer_number) or CustomerAccount(customer_number=c.customer_number)
            account.register(c.id)
            account.credit_from_note(note_id, c.id, invoice_id, excess, jst_date(at))
            return [account]
        return self._issuing_command(contract_id, expected_version, act, at, also=to_credit)

    def waive_interest(self, contract_id: uuid.UUID, invoice_id: uuid.UUID, reason: str, at: datetime,
                       expected_version: int | None = None) -> CommandResult:
        return self._contract_command(
            contract_id, expected_version, lambda c: c.waive_interest(invoice_id, reason, at, self.policy))

    def bill_interest(self, contract_id: uuid.UUID, at: datetime,
                      expected_version: int | None = None) -> CommandResult:
        return self._issuing_command(
            contract_id, expected_version, lambda c, book: c.bill_interest(jst_date(at), self.policy, book, at), at)

    # -- contractor information and data (Art. 12, 15) ----------------------------------------------
    def change_contractor(self, contract_id: uuid.UUID, contractor: dict[str, str], at: datetime,
                          expected_version: int | None = None) -> CommandResult:
        return self._contract_command(contract_id, expected_version, lambda c: c.change_contractor(contractor, at))

    def delete_stored_data(self, contract_id: uuid.UUID, on: date) -> CommandResult:
        """Art. 15.3: record that the customer's stored data is purged (the platform acts on it)."""
        return self._contract_command(contract_id, None, lambda c: c.delete_stored_data(on))

    def erase_contractor_data(self, contract_id: uuid.UUID, on: date) -> CommandResult:
        """Spec 10: destroy the contract's keys once the contractor data need not be kept (and the
        payer data of the customer's transfers with the last of its contracts, ``erase_payer_data``);
        not while the customer's credit balance is owed to them (rule book 7, 10)."""
        contract = self.get_contract(contract_id)
        account = self.find_account(contract.customer_number) if contract.customer_number else None
        credit, cleared_on = (0, None) if account is None else (account.credit_balance, account.credit_cleared_on)
        contract.erase_contractor_data(on, self.policy, credit, cleared_on)
        return self._commit(contract, *self.erase_payer_data(contract, contract.contractor_erased_on or on))

    def answer_privacy_request(self, contract_id: uuid.UUID, request: str, at: datetime,
                               expected_version: int | None = None) -> tuple[CommandResult, dict[str, Any]]:
        """Privacy policy 7: a request to stop using or erase the contractor data, with its answer."""
        require_aware(at)
        contract = self.get_contract(contract_id)
        if expected_version is not None and expected_version != contract.version:
            raise ConcurrencyConflict("rule book 3",
                                      f"contract is at version {contract.version}, not the If-Match version",
                                      "If-Match")
        already = contract.data_deleted
        credit = self.customer_credit(contract.customer_number)  # owed to the customer: kept (rule book 7, 10)
        answer = contract.answer_privacy_request(request, at, self.policy, credit)
        erased = self.erase_payer_data(contract, answer["received_on"]) if contract.data_deleted and not already else []
        return self._commit(contract, *erased), answer

    def catalog_service(self, service: str) -> None:
        if service not in self.catalog.services():
            raise InvalidInput("Art. 7", "unknown service (not in the catalog)", "service")
