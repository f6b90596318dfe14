"""Settlement commands (rule book section 7, Art. 9.3 and 9.5): bank transfers for a customer,
their allocation to the customer's open invoices, credit balance, reversal, write-offs and the
operator's discretion over a suspension. Mixed into ``ContractsApplication``.

One command saves the transfer, the customer's account and every contract it touched in ONE
transaction. Two transfers for the same customer at once both change the account; the second
save conflicts and is re-run on fresh state, so no yen is allocated twice (tested on PostgreSQL).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from application.command_receipts import outside_receipt_scope
from application.ports import BulkEventReader
from domain.calendar import jst_date, require_aware
from domain.contract import ENDED, Contract
from domain.errors import ConcurrencyConflict, DomainError, InvalidInput, NotFound, RuleViolation
from domain.invoice_numbers import InvoiceSequence
from domain.settlement import (
    RULE_CREDIT_APPLIED,
    RULE_UNCOLLECTIBLE,
    CustomerAccount,
    OpenInvoice,
    Transfer,
    allocate,
    payer_data_erasable,
)

if TYPE_CHECKING:
    from application.service import CommandResult, ContractsApplication

logger = logging.getLogger(__name__)

ATTEMPTS = 5  # re-runs of an allocation whose save met a concurrent one for the same customer
CREDIT_RETRIES = 5  # sweeps that retry a credit step that failed after an invoice was issued (rule book 7)


@dataclass(frozen=True)
class TransferOutcome:
    result: CommandResult
    transfer: Transfer
    contracts: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict)  # id -> (version before, after)


def open_invoices(contracts: Sequence[Contract], on: date | None = None) -> list[OpenInvoice]:
    """The customer's invoices with unpaid principal (issued by ``on`` when given), oldest first."""
    found = [OpenInvoice(i.due_on, i.issued_on, i.invoice_id, c.id, i.outstanding)
             for c in contracts for i in c.ledger.invoices.values()
             if i.outstanding > 0 and (on is None or i.issued_on <= on)]
    return sorted(found)


class SettlementCommands:
    """Rule book 7. Expects the ``ContractsApplication`` plumbing (``repository``, ``_commit``...)."""

    # -- reading --------------------------------------------------------------------------------------
    def _app(self) -> ContractsApplication:
        return cast("ContractsApplication", self)

    def get_transfer(self, transfer_id: uuid.UUID) -> Transfer:
        try:
            found: Aggregate = self._app().repository.get(transfer_id)
        except AggregateNotFoundError:
            raise NotFound("rule book 7", "no such transfer", "transfer_id") from None
        if not isinstance(found, Transfer):
            raise NotFound("rule book 7", "no such transfer", "transfer_id")
        return found

    def find_account(self, customer_number: str) -> CustomerAccount | None:
        try:
            found: Aggregate = self._app().repository.get(CustomerAccount.create_id(customer_number))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, CustomerAccount) else None

    def _account(self, customer_number: str) -> CustomerAccount:
        """The customer's account for a command: made when missing, with the customer's contracts
        from before accounts existed registered (saved with the command, ``earlier_contracts``)."""
        account = self.find_account(customer_number) or CustomerAccount(customer_number=customer_number)
        return self._with_earlier(account)

    def account_of(self, customer_number: str) -> CustomerAccount | None:
        """The customer's account as it reads now: the stored one, or for a customer whose contracts
        all predate accounts one made for them (not saved); None for an unknown customer."""
        account = self.find_account(customer_number)
        if account is None:
            account = self._with_earlier(CustomerAccount(customer_number=customer_number))
            return account if account.contract_ids else None
        return self._with_earlier(account)

    def _with_earlier(self, account: CustomerAccount) -> CustomerAccount:
        for contract_id in self.earlier_contracts(account):
            account.register(contract_id)
        return account

    def earlier_contracts(self, account: CustomerAccount) -> list[uuid.UUID]:
        """Contracts of the customer opened before customer accounts existed (rule book 7), not yet
        registered: found by their derived ids, one per catalog service (``Contract.create_id`` with
        no reference; a contract opened with a reference is registered by a transfer that names it,
        ``contract_id``). Every contract opened since registers itself, so a customer found to have
        none is not looked up again by this process."""
        checked: set[str] = self.__dict__.setdefault("_no_earlier_contracts", set())
        if account.customer_number in checked:
            return []
        found: list[uuid.UUID] = []
        for service in self._app().catalog.services():
            contract_id = Contract.create_id(account.customer_number, service)
            if contract_id in account.contract_ids:
                continue
            try:
                contract: Aggregate = self._app().repository.get(contract_id)
            except AggregateNotFoundError:
                continue
            if isinstance(contract, Contract) and contract.customer_number == account.customer_number:
                found.append(contract_id)
        if not found:
            checked.add(account.customer_number)
        return found

    def customer_contracts(self, account: CustomerAccount) -> list[Contract]:
        return [self._app().get_contract(cid) for cid in account.contract_ids]

    def unapplied_transfers(self) -> list[Transfer]:
        """Transfers kept as unapplied (payer unknown): for an operator to apply by hand. Reads the
        whole log (the in-memory store and tests); the API and the CLI list them from the transfers
        read table (``application.projections.transfers``)."""
        app = self._app()
        found = []
        for tid in app.iter_aggregate_ids("domain.settlement:Transfer.Received"):
            transfer = self.get_transfer(tid)
            if transfer.status == "unapplied":
                found.append(transfer)
        return sorted(found, key=lambda t: (t.value_date, str(t.id)))

    # -- transfers ------------------------------------------------------------------------------------
    def receive_transfer(self, customer_number: str | None, payer_name: str, bank_reference: str, amount: int,
                         value_date: date, at: datetime, invoice_ids: Sequence[uuid.UUID] = (),
                         contract_id: uuid.UUID | None = None,
                         payment_reference: str | None = None) -> TransferOutcome:
        """A transfer received (rule book 7). With the customer: allocated at once. Without (the payer
        is not known): kept as unapplied. ``contract_id`` registers that contract with the customer
        first (contracts opened before accounts existed). ``payment_reference``: the payer's reference
        recorded on the payment itself (the per-invoice endpoint: one invoice, so one payment)."""
        require_aware(at)
        transfer_id = Transfer.create_id(customer_number, bank_reference)
        if self._exists(transfer_id):
            raise RuleViolation("rule book 7", "a transfer with this bank reference is already recorded "
                                "for this customer", "bank_reference")
        if customer_number is None:
            transfer = Transfer.receive(None, payer_name, bank_reference, amount, value_date, (), at)
            return TransferOutcome(self._app()._commit(transfer), transfer)
        return self._allocate(lambda: Transfer.receive(customer_number, payer_name, bank_reference, amount,
                                                       value_date, invoice_ids, at),
                              customer_number, at, contract_id, new=True, payment_reference=payment_reference)

    def apply_unapplied(self, transfer_id: uuid.UUID, customer_number: str, at: datetime,
                        invoice_ids: Sequence[uuid.UUID] = ()) -> TransferOutcome:
        """An operator assigns an unapplied transfer to its customer (and optionally invoices)."""
        transfer = self.get_transfer(transfer_id)
        if transfer.status != "unapplied":
            raise RuleViolation("rule book 7", f"the transfer is {transfer.status}, not unapplied")
        if self._exists(Transfer.create_id(customer_number, transfer.bank_reference)):
            raise RuleViolation("rule book 7", "a transfer with this bank reference is already recorded "
                                "for this customer", "bank_reference")

        def reload() -> Transfer:
            fresh = self.get_transfer(transfer_id)
            fresh.named_invoices = list(invoice_ids)
            return fresh
        return self._allocate(reload, customer_number, at, None, new=False)

    def _allocate(self, make: Any, customer_number: str, at: datetime, contract_id: uuid.UUID | None,
                  new: bool, payment_reference: str | None = None) -> TransferOutcome:
        app = self._app()
        for attempt in range(1, ATTEMPTS + 1):
            transfer: Transfer = make()
            account = self._account(customer_number)
            if contract_id is not None:
                contract = app.get_contract(contract_id)
                if contract.customer_number != customer_number:
                    raise InvalidInput("rule book 7", "the contract belongs to another customer", "contract_id")
                account.register(contract_id)
            contracts = {c.id: c for c in self.customer_contracts(account)}
            before = {cid: c.version for cid, c in contracts.items()}
            mine = {i.invoice_id for c in contracts.values() for i in c.ledger.invoices.values()}
            if any(i not in mine for i in transfer.named_invoices):
                raise InvalidInput("rule book 7", "invoice_ids names an invoice that is not this customer's",
                                   "invoice_ids")
            plan = allocate(transfer.amount, open_invoices(list(contracts.values()), transfer.value_date),
                            transfer.named_invoices, app.policy.transfer_fee_tolerance)
            touched: dict[uuid.UUID, Contract] = {}
            for a in plan.allocations:
                contract = contracts[a.contract_id]
                contract.receive_payment(a.invoice_id, a.amount, transfer.value_date, at, reference=payment_reference,
                                         transfer_id=transfer.id)
                touched[contract.id] = contract
            for w in plan.written_off:
                contract = contracts[w.contract_id]
                contract.write_off(w.invoice_id, w.amount, transfer.value_date, w.rule,
                                   "transfer fee shortfall (振込手数料)", transfer_id=transfer.id)
                touched[contract.id] = contract
            transfer.apply_for(customer_number, plan, at)
            account.record_transfer(transfer.id, plan.allocated, plan.credit)
            sequences = self._settle_ended(touched.values(), at)
            try:
                result = app._commit(transfer, account, *touched.values(), *sequences)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                if new and self._exists(transfer.id):  # the same transfer, recorded concurrently
                    raise RuleViolation("rule book 7", "a transfer with this bank reference is already recorded "
                                        "for this customer") from None
                continue
            if sequences:  # an interest invoice was issued (Contract.settle): credit balance pays it too
                self.credit_after_issue([customer_number], at)
            return TransferOutcome(result, transfer, {cid: (before[cid], c.version) for cid, c in touched.items()})
        raise AssertionError("unreachable")

    def reverse_transfer(self, transfer_id: uuid.UUID, reason: str, on: date, at: datetime) -> CommandResult:
        """Rule book 7: a bounced or mistaken transfer is reversed by an event naming it; its
        allocations unwind (and so does the credit it left, where it was spent)."""
        require_aware(at)
        if on > jst_date(at):
            raise InvalidInput("rule book 7", "reversed_on lies in the future", "reversed_on")
        app = self._app()
        for attempt in range(1, ATTEMPTS + 1):
            transfer = self.get_transfer(transfer_id)
            was_applied = transfer.status == "applied"
            transfer.reverse(reason, on)
            changed: list[Aggregate] = [transfer]
            if was_applied and transfer.customer_number is not None:
                account = self._account(transfer.customer_number)
                contracts: dict[uuid.UUID, Contract] = {}
                for cid in dict.fromkeys(a.contract_id for a in transfer.allocations):
                    contracts.setdefault(cid, app.get_contract(cid)).reverse_payment(transfer.id, on, reason)
                for cid in dict.fromkeys(u.contract_id for u in account.uses if u.source == transfer.id):
                    if cid not in contracts:
                        contracts[cid] = app.get_contract(cid)
                    contracts[cid].reverse_payment(transfer.id, on, reason, source="credit_balance")
                account.reverse_transfer(transfer.id, on)
                changed += [account, *contracts.values()]
            try:
                return app._commit(*changed)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    # -- credit balance -------------------------------------------------------------------------------
    def apply_credit_balance(self, customer_number: str, at: datetime) -> CommandResult:
        """The customer's credit balance pays their open invoices, oldest first (rule book 7)."""
        require_aware(at)
        app = self._app()
        for attempt in range(1, ATTEMPTS + 1):
            account = self.find_account(customer_number)
            if account is None or account.credit_balance <= 0:
                raise RuleViolation("rule book 7", "the customer has no credit balance")
            contracts = {c.id: c for c in self.customer_contracts(self._with_earlier(account))}
            on = jst_date(at)
            uses = account.plan_credit(open_invoices(list(contracts.values()), on))
            if not uses:
                raise RuleViolation("rule book 7", "the customer has no open invoice to apply credit to")
            account.apply_credit(uses, on)
            for use in uses:
                contracts[use.contract_id].receive_payment(use.invoice_id, use.amount, on, at,
                                                           transfer_id=use.source, source="credit_balance")
            touched = [contracts[cid] for cid in dict.fromkeys(u.contract_id for u in uses)]
            sequences = self._settle_ended(touched, at)
            try:
                result = app._commit(account, *touched, *sequences)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            if sequences:  # the interest invoice it issued (Contract.settle) takes what credit is left
                self.credit_after_issue([customer_number], at)
            return result
        raise AssertionError("unreachable")

    def credit_after_issue(self, customer_numbers: Iterable[str], at: datetime) -> list[CommandResult]:
        """Rule book 7 ("applied to their next invoices"): the one step every path that issued invoices
        calls after its own commit (``_issuing_command`` for HTTP, CLI and scheduler commands, the
        sweep's month start batches, a transfer or credit application whose settlement issued an
        interest invoice). The customers' credit balance pays their open invoices
        (``apply_credit_to_new_invoices``: idempotent), as the current actor, in a follow-up
        transaction of its own (no command receipt: the command's went with its events). A failure
        is logged and never undoes the issue: the customers are kept as pending and the scheduler's
        sweep retries them (``retry_pending_credit``, at most ``CREDIT_RETRIES`` sweeps)."""
        numbers = [n for n in dict.fromkeys(customer_numbers) if n]
        if not numbers:
            return []
        try:
            with outside_receipt_scope():
                results = self.apply_credit_to_new_invoices(numbers, at)
        except Exception as exc:  # noqa: BLE001 - the invoices are issued; the credit waits for a retry
            logger.warning("applying credit balance after an invoice was issued failed (%s); the scheduler "
                           "retries it", type(exc).__name__, exc_info=not isinstance(exc, DomainError))
            pending = self.pending_credit
            for n in numbers:
                pending.setdefault(n, 0)
            return []
        for n in numbers:
            self.pending_credit.pop(n, None)
        return results

    @property
    def pending_credit(self) -> dict[str, int]:
        """Customers whose credit step failed after an invoice was issued (rule book 7) -> sweeps that
        retried it since. Kept by this process (the scheduler runs in the API process or its own)."""
        pending: dict[str, int] = self.__dict__.setdefault("_pending_credit", {})
        return pending

    def retry_pending_credit(self, at: datetime) -> list[CommandResult]:
        """The sweep's retry of ``credit_after_issue`` failures: each pending customer once per sweep,
        at most ``CREDIT_RETRIES`` times; then it is left to the operator
        (``POST /v1/customers/{n}/credit/apply``) or the customer's next invoice. Idempotent: a
        customer whose credit was applied meanwhile stores nothing."""
        pending = self.pending_credit
        results: list[CommandResult] = []
        for customer_number in list(pending):
            try:
                with outside_receipt_scope():
                    results.extend(self.apply_credit_to_new_invoices([customer_number], at))
            except Exception as exc:  # noqa: BLE001 - one customer must not stop the others
                pending[customer_number] += 1
                if pending[customer_number] >= CREDIT_RETRIES:
                    del pending[customer_number]
                    logger.error("applying credit balance failed %d times (%s); left for an operator "
                                 "(POST /v1/customers/{n}/credit/apply)", CREDIT_RETRIES, type(exc).__name__)
                continue
            del pending[customer_number]
        return results

    def apply_credit_to_new_invoices(self, customer_numbers: Iterable[str], at: datetime) -> list[CommandResult]:
        """Rule book 7 ("applied to their next invoices"): after invoices are issued, each named
        customer whose account holds credit has it applied (``apply_credit_balance``: oldest invoice
        first, oldest credit first, principal before interest). Idempotent: a customer with no
        credit or nothing open is skipped and stores nothing, so re-running applies nothing twice.
        Cheap: the accounts are read in one query (``accounts_with_credit``); contracts are loaded
        only for a customer with credit."""
        results: list[CommandResult] = []
        for customer_number in self.accounts_with_credit(list(dict.fromkeys(customer_numbers))):
            try:
                results.append(self.apply_credit_balance(customer_number, at))
            except RuleViolation:  # nothing open to apply it to (or spent meanwhile): nothing to do
                continue
        return results

    def accounts_with_credit(self, customer_numbers: Sequence[str]) -> list[str]:
        """Those of ``customer_numbers`` whose account holds credit balance (rule book 7), in order:
        one query for all their accounts' events where the store allows (``BulkEventReader``),
        else one load each. An account whose events do not decode is logged and left out."""
        recorder = self._app().recorder
        if not isinstance(recorder, BulkEventReader):
            return [n for n in customer_numbers
                    if (account := self.find_account(n)) is not None and account.credit_balance > 0]
        ids = {CustomerAccount.create_id(n): n for n in customer_numbers}
        grouped: dict[uuid.UUID, list[Any]] = {}
        for stored in recorder.select_events_of(list(ids)):
            oid = stored.originator_id  # a UUID from the stores here: converted only if not one
            grouped.setdefault(oid if type(oid) is uuid.UUID else uuid.UUID(str(oid)), []).append(stored)
        with_credit: set[str] = set()
        mapper = self._app().mapper
        for account_id, stored_events in grouped.items():
            try:
                aggregate: Any = None
                for stored in stored_events:
                    aggregate = mapper.to_domain_event(stored).mutate(aggregate)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - one bad account must not stop the others
                logger.warning("customer account %s does not decode (%s): its credit is not applied", account_id,
                               type(exc).__name__)
                continue
            if isinstance(aggregate, CustomerAccount) and aggregate.credit_balance > 0:
                with_credit.add(ids[account_id])
        return [n for n in customer_numbers if n in with_credit]

    def customer_credit(self, customer_number: str) -> int:
        """The customer's credit balance (rule book 7), owed to the customer: 0 without an account."""
        account = self.find_account(customer_number) if customer_number else None
        return 0 if account is None else account.credit_balance

    def refund_credit_balance(self, customer_number: str, amount: int, reason: str, at: datetime) -> CommandResult:
        require_aware(at)
        account = self.find_account(customer_number)
        if account is None:
            raise NotFound("rule book 7", "no account for this customer", "customer_number")
        account.refund_credit(amount, reason, jst_date(at))
        return self._app()._commit(account)

    # -- write-offs and operator discretion (rule book 7, Art. 9.5 proviso) -----------------------------
    def write_off_debt(self, contract_id: uuid.UUID, invoice_id: uuid.UUID, amount: int, reason: str,
                       at: datetime, expected_version: int | None = None) -> CommandResult:
        require_aware(at)
        return self._app()._issuing_command(
            contract_id, expected_version,
            lambda c, _: c.write_off(invoice_id, amount, jst_date(at), RULE_UNCOLLECTIBLE, reason), at,
            settle_on=jst_date(at))

    def move_suspension_stop(self, contract_id: uuid.UUID, stop_on: date, reason: str, at: datetime,
                             expected_version: int | None = None) -> CommandResult:
        require_aware(at)
        return self._app()._contract_command(contract_id, expected_version,
                                             lambda c: c.move_suspension_stop(stop_on, reason, at))

    def lift_suspension(self, contract_id: uuid.UUID, reason: str, at: datetime,
                        expected_version: int | None = None) -> CommandResult:
        require_aware(at)
        return self._app()._contract_command(contract_id, expected_version, lambda c: c.lift_suspension(reason, at))

    # -- personal data (spec 10) ----------------------------------------------------------------------
    def erase_payer_data(self, contract: Contract, on: date) -> list[Transfer]:
        """The customer's transfers whose payer data goes with ``contract``'s contractor data (not
        saved: the caller commits them with the contract, so the keys go in one transaction).
        Empty unless ``contract`` is the customer's last contract keeping contractor data
        (``domain.settlement.payer_data_erasable``)."""
        account = self.find_account(contract.customer_number)
        if account is None or not account.transfer_ids:
            return []
        self._with_earlier(account)  # a contract from before accounts keeps the payer data too (not saved here)
        others = [self._app().get_contract(cid) for cid in account.contract_ids if cid != contract.id]
        if not payer_data_erasable([contract.data_deleted, *(c.data_deleted for c in others)]):
            return []
        reason = "the contractor data of every contract of the customer is erased (spec 10)"
        erased: list[Transfer] = []
        for transfer_id in account.transfer_ids:
            transfer = self.get_transfer(transfer_id)
            if transfer.payer_erased_on is None:
                transfer.erase_payer_data(max(on, transfer.value_date), reason)
                erased.append(transfer)
        return erased

    # -- helpers --------------------------------------------------------------------------------------
    def _settle_ended(self, contracts: Iterable[Contract], at: datetime) -> list[InvoiceSequence]:
        """Rule book 6, Art. 9.4: money that settles the principal of an ended contract makes its
        accrued late interest a claim now (an interest invoice; ``Contract.settle``), in the same
        transaction, with numbers drawn from the issuer's sequence (a conflict re-runs the command)."""
        ended = [c for c in contracts if c.state in ENDED]
        if not ended:
            return []
        app = self._app()
        book = app.number_book()
        for contract in ended:
            contract.settle(jst_date(at), app.policy, book, at)
        return book.close(at)

    def _exists(self, aggregate_id: uuid.UUID) -> bool:
        try:
            self._app().repository.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True


__all__ = ["SettlementCommands", "TransferOutcome", "open_invoices", "RULE_CREDIT_APPLIED"]
