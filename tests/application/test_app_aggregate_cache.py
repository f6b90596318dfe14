"""The aggregate cache (``CONTRACTS_AGGREGATE_CACHE_SIZE``) and what a command works on (rule book 3).

Reads get a private copy of the cached contract (``private_copy``, in place of the library's
deepcopy, issue 7). Contract commands work on the cached contract itself, holding its lock in the
process from the load to the commit (``application.aggregate_locks``, issue 21): a refused,
conflicting or failed command evicts it, so the cache never holds a state that was not stored, and
nobody sees a command half-applied. They trust the cached state without a fast-forward read: a
state made stale by another process is found out by the store (a conflict on save), and every
outcome that could depend on it (the conflict, a refusal, an If-Match mismatch) is decided again on
the stored events.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from app_kit import CONTRACTOR, jst, monthly_to_june, summary
from eventsourcing.persistence import OperationalError

from application.service import ContractsApplication, private_copy
from domain.contract import Contract
from domain.errors import ConcurrencyConflict, RuleViolation


def test_every_load_is_a_private_copy_of_the_cached_contract(app: ContractsApplication) -> None:
    assert app.repository.cache  # the composition root turns the cache on by default
    cid = monthly_to_june(app)
    first, second = app.get_contract(cid), app.get_contract(cid)
    assert first is not second and first.ledger is not second.ledger and first.contractor is not second.contractor
    assert summary(first) == summary(second)
    first.change_contractor({**CONTRACTOR, "name": "Not saved K.K."}, jst(2026, 6, 2))  # mutated, never saved
    again = app.get_contract(cid)
    assert again.contractor == CONTRACTOR and again.version == second.version


def test_a_refused_command_leaves_the_cached_contract_as_stored(app: ContractsApplication) -> None:
    cid = monthly_to_june(app)
    before = summary(app.get_contract(cid))
    with pytest.raises(RuleViolation):  # Art. 15.3: no deletion while the contract runs
        app.delete_stored_data(cid, jst(2026, 6, 3).date())
    assert summary(app.get_contract(cid)) == before


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_conflicting_save_leaves_the_cached_contract_as_stored(
        app: ContractsApplication, reopen: Callable[[], ContractsApplication | None]) -> None:
    other = reopen()  # a second application over the same stored events (another process)
    assert other is not None
    cid = monthly_to_june(app)
    cached_version = app.get_contract(cid).version

    def raced(c: Contract) -> None:  # another process changes the contract between our load and save
        other.change_contractor(cid, {**CONTRACTOR, "name": "Other Process K.K."}, jst(2026, 6, 2))
        c.change_contractor({**CONTRACTOR, "name": "Lost Update K.K."}, jst(2026, 6, 2))

    with pytest.raises(ConcurrencyConflict):  # raced again on the retry from the stored state
        app._contract_command(cid, None, raced)
    with pytest.raises(KeyError):  # evicted: the cache never holds the unsaved change
        app.repository.cache.get(cid)
    now = app.get_contract(cid)  # read from what was really stored
    assert (now.version, now.contractor["name"]) == (cached_version + 2, "Other Process K.K.")
    app.change_contractor(cid, {**CONTRACTOR, "name": "Retried K.K."}, jst(2026, 6, 3))
    assert app.get_contract(cid).contractor["name"] == "Retried K.K."


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_contract_made_stale_by_another_process_is_commanded_on_the_stored_state(
        app: ContractsApplication, reopen: Callable[[], ContractsApplication | None]) -> None:
    other = reopen()
    assert other is not None
    cid = monthly_to_june(app)
    version = app.get_contract(cid).version  # cached here at this version
    other.change_contractor(cid, {**CONTRACTOR, "name": "Other Process K.K."}, jst(2026, 6, 2))
    cached = app.repository.cache.get(cid)
    assert isinstance(cached, Contract) and cached.version == version  # stale: nobody told this process
    # If-Match with the stored version: the stale cached version is not a reason to refuse
    result = app.change_contractor(cid, {**CONTRACTOR, "name": "This Process K.K."}, jst(2026, 6, 3),
                                   expected_version=version + 1)
    assert result.version == version + 2
    stored = other.get_contract(cid)
    assert (stored.version, stored.contractor["name"]) == (version + 2, "This Process K.K.")
    cached = app.repository.cache.get(cid)
    assert isinstance(cached, Contract) and cached.version == version + 2  # the committed state is the cached one
    # and a command on the fresh cache needs no retry: an If-Match of a version never stored is refused
    with pytest.raises(ConcurrencyConflict):
        app.change_contractor(cid, CONTRACTOR, jst(2026, 6, 4), expected_version=version)


def test_private_copy_equals_the_original_and_shares_nothing(app: ContractsApplication) -> None:
    cid = monthly_to_june(app)
    original = app.repository.get(cid)
    copied = private_copy(original)
    assert summary(copied) == summary(original) and copied.__dict__.keys() == original.__dict__.keys()
    assert all(copied.__dict__[k] is not v for k, v in original.__dict__.items()
               if isinstance(v, dict | list) and v)



def test_a_command_works_on_the_cached_contract_itself(app: ContractsApplication) -> None:
    cid = monthly_to_june(app)
    app.get_contract(cid)
    cached = app.repository.cache.get(cid)
    result = app.change_contractor(cid, {**CONTRACTOR, "name": "Renamed K.K."}, jst(2026, 6, 2))
    assert app.repository.cache.get(cid) is cached  # no copy made, none put back
    assert (cached.version, cached.contractor["name"]) == (result.version, "Renamed K.K.")
    assert not cached.pending_events


def test_a_first_load_by_a_command_is_cached_once_committed(app: ContractsApplication) -> None:
    cid = monthly_to_june(app)
    app._evict(cid)
    with pytest.raises(RuleViolation):  # Art. 15.3: refused on the stored state: nothing cached
        app.delete_stored_data(cid, jst(2026, 6, 3).date())
    with pytest.raises(KeyError):
        app.repository.cache.get(cid)
    result = app.change_contractor(cid, {**CONTRACTOR, "name": "Renamed K.K."}, jst(2026, 6, 2))
    cached = app.repository.cache.get(cid)
    assert isinstance(cached, Contract) and (cached.version, cached.contractor["name"]) == (result.version,
                                                                                            "Renamed K.K.")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_command_whose_save_fails_evicts_the_contract(app: ContractsApplication,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cid = monthly_to_june(app)
    version = app.get_contract(cid).version

    def down(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection lost")

    monkeypatch.setattr(app.recorder, "insert_events", down)
    with pytest.raises(OperationalError):  # applied to the cached contract, never stored
        app.change_contractor(cid, {**CONTRACTOR, "name": "Never Stored K.K."}, jst(2026, 6, 2))
    monkeypatch.undo()
    with pytest.raises(KeyError):
        app.repository.cache.get(cid)
    again = app.get_contract(cid)
    assert (again.version, again.contractor) == (version, CONTRACTOR)


def test_commands_of_one_process_on_one_contract_do_not_conflict(app: ContractsApplication) -> None:
    """Rule book 3: concurrent commands of this process on one contract take turns (its lock), none
    is refused as a conflict and none is lost."""
    cid = monthly_to_june(app)
    version = app.get_contract(cid).version
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def client(n: int) -> None:
        start.wait()
        for k in range(10):
            try:
                app.change_contractor(cid, {**CONTRACTOR, "name": f"Client {n}-{k} K.K."}, jst(2026, 6, 2))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert app.get_contract(cid).version == version + 40


def test_a_read_waits_for_a_command_in_progress(app: ContractsApplication) -> None:
    """A read of a contract a command is changing gets the state before or after it, never between."""
    cid = monthly_to_june(app)
    app.get_contract(cid)
    app._locks.wait = 30.0  # (bounded: see the next tests)
    inside, release = threading.Event(), threading.Event()
    read: list[Contract] = []

    def slow(c: Contract) -> None:
        c.change_contractor({**CONTRACTOR, "name": "Half Way K.K."}, jst(2026, 6, 2))  # applied, not yet saved
        inside.set()
        release.wait(10)

    command = threading.Thread(target=lambda: app._contract_command(cid, None, slow))
    command.start()
    assert inside.wait(10)
    reader = threading.Thread(target=lambda: read.append(app.get_contract(cid)))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and not read  # waits for the command's commit
    release.set()
    command.join(10)
    reader.join(10)
    assert [(c.contractor["name"], c.version) for c in read] == [("Half Way K.K.", app.get_contract(cid).version)]


def _hold_contract(app: ContractsApplication, cid: object, name: str
                   ) -> tuple[threading.Thread, threading.Event, threading.Event, list[BaseException]]:
    """A command on ``cid`` that applies its change, then waits until released before saving."""
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow(c: Contract) -> None:
        c.change_contractor({**CONTRACTOR, "name": name}, jst(2026, 6, 2))
        inside.set()
        release.wait(30)

    def run() -> None:
        try:
            app._contract_command(cid, None, slow)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    command = threading.Thread(target=run)
    command.start()
    assert inside.wait(10)
    return command, inside, release, errors


def test_a_read_does_not_wait_past_the_bound_and_never_sees_a_half_applied_command(
        app: ContractsApplication) -> None:
    cid = monthly_to_june(app)
    before = app.get_contract(cid)
    app._locks.wait = 0.1
    command, _, release, errors = _hold_contract(app, cid, "Half Way K.K.")
    try:
        read = app.get_contract(cid)  # past the cache: the stored state
        assert (read.version, read.contractor) == (before.version, CONTRACTOR)
    finally:
        release.set()
        command.join(10)
    assert errors == []
    after = app.get_contract(cid)
    assert (after.version, after.contractor["name"]) == (before.version + 1, "Half Way K.K.")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_command_that_cannot_get_the_lock_in_time_runs_on_the_stored_state(app: ContractsApplication) -> None:
    """Rule book 3: the store decides between it and the holder; both commands are kept, in turn."""
    cid = monthly_to_june(app)
    version = app.get_contract(cid).version
    app._locks.wait = 0.1
    command, _, release, errors = _hold_contract(app, cid, "Holder K.K.")
    try:
        result = app.change_contractor(cid, {**CONTRACTOR, "name": "Waiter K.K."}, jst(2026, 6, 3))
        assert result.version == version + 1
    finally:
        release.set()
        command.join(10)
    assert errors == []  # the holder conflicted on its stale cached state, then ran on the stored one
    final = app.get_contract(cid)
    assert (final.version, final.contractor["name"]) == (version + 2, "Holder K.K.")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_with_verify_cached_a_stale_contract_is_found_before_acting_not_by_a_conflict(
        app: ContractsApplication, reopen: Callable[[], ContractsApplication | None]) -> None:
    """``verify_cached`` (``contracts serve --workers N``): the cached version is checked against the
    store first, so a contract another process changed is commanded once, on the stored state: one
    write, not a refused write and a second one."""
    other = reopen()
    assert other is not None
    cid = monthly_to_june(app)
    version = app.get_contract(cid).version  # cached here at this version
    other.change_contractor(cid, {**CONTRACTOR, "name": "Other Process K.K."}, jst(2026, 6, 2))
    writes = []
    insert = app.recorder.insert_events

    def counted(*args: object, **kwargs: object) -> object:
        writes.append(1)
        return insert(*args, **kwargs)

    app.recorder.insert_events = counted  # type: ignore[method-assign]
    app.verify_cached = False
    app.change_contractor(cid, {**CONTRACTOR, "name": "Trusted K.K."}, jst(2026, 6, 3))
    assert len(writes) == 2  # trusted stale cache: refused by the store, then again on the stored state
    other.change_contractor(cid, {**CONTRACTOR, "name": "Other Process again K.K."}, jst(2026, 6, 4))
    writes.clear()
    app.verify_cached = True
    result = app.change_contractor(cid, {**CONTRACTOR, "name": "Verified K.K."}, jst(2026, 6, 5))
    assert len(writes) == 1 and result.version == version + 4  # four changes of the contractor, one each
    stored = other.get_contract(cid)
    assert (stored.version, stored.contractor["name"]) == (version + 4, "Verified K.K.")
    # a fresh cache is used as it is, after the one version read
    writes.clear()
    assert app.change_contractor(cid, CONTRACTOR, jst(2026, 6, 6)).version == version + 5 and len(writes) == 1


def cached_then_changed_elsewhere(app: ContractsApplication, reopen: Callable[[], ContractsApplication | None],
                                  *names: str) -> tuple[ContractsApplication, uuid.UUID, int, Contract]:
    """A contract cached in ``app`` at ``version``, then changed by another process once per name
    (its contractor renamed): the other process, the id, the cached version and the cached object."""
    other = reopen()
    assert other is not None
    cid = monthly_to_june(app)
    version = app.get_contract(cid).version
    cached = app.repository.cache.get(cid)  # type: ignore[union-attr]
    for name in names:
        other.change_contractor(cid, {**CONTRACTOR, "name": name}, jst(2026, 6, 2))
    return other, cid, version, cached


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_with_verify_cached_a_stale_contract_is_brought_up_to_date_not_read_again(
        app: ContractsApplication, reopen: Callable[[], ContractsApplication | None]) -> None:
    """``verify_cached``: the cached contract gets only the events stored after its version (one read
    with ``gt``), applied to it in place; no read of its whole history, no read of the stored
    version; a current one reads nothing more."""
    other, cid, version, cached = cached_then_changed_elsewhere(app, reopen, "Other One K.K.", "Other Two K.K.")
    reads: list[tuple[object, object]] = []
    select = app.recorder.select_events

    def counted(originator_id: object, **kwargs: object) -> object:
        found = select(originator_id, **kwargs)  # type: ignore[arg-type]
        reads.append((kwargs.get("gt"), [e.originator_version for e in found]))
        return found

    app.recorder.select_events = counted  # type: ignore[method-assign]
    app.verify_cached = True
    result = app.change_contractor(cid, {**CONTRACTOR, "name": "Third K.K."}, jst(2026, 6, 3))
    assert reads == [(version, [version + 1, version + 2])]  # the two newer events, nothing else read
    assert result.version == version + 3
    assert app.repository.cache.get(cid) is cached  # type: ignore[union-attr]  # the same object, moved on
    assert (cached.version, cached.contractor["name"]) == (version + 3, "Third K.K.")
    stored = other._stored_contract(cid)
    assert (stored.version, stored.contractor["name"]) == (version + 3, "Third K.K.")
    assert summary(stored) == summary(cached)
    reads.clear()
    assert app.change_contractor(cid, CONTRACTOR, jst(2026, 6, 4)).version == version + 4
    assert reads == [(version + 3, [])]  # current: the one read finds nothing


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_with_verify_cached_events_that_do_not_apply_evict_and_the_stored_state_decides(
        app: ContractsApplication, reopen: Callable[[], ContractsApplication | None]) -> None:
    """Newer events that do not apply to the cached contract (here the read hands the newer event
    twice: the second is not the next in its sequence, after the first was applied) leave a
    half-moved object: it is evicted, and the command runs on the state read from the store."""
    other, cid, version, cached = cached_then_changed_elsewhere(app, reopen, "Other K.K.")
    get = app.events.get

    def doubled(originator_id: object, **kwargs: object) -> object:
        found = list(get(originator_id, **kwargs))  # type: ignore[arg-type]
        return found + found[-1:] if kwargs.get("gt") is not None else found

    app.events.get = doubled  # type: ignore[method-assign]
    app.verify_cached = True
    result = app.change_contractor(cid, {**CONTRACTOR, "name": "Stored K.K."}, jst(2026, 6, 3))
    assert result.version == version + 2
    assert cached.version == version + 1  # moved by the first, refused by the second: no longer cached
    again = app.repository.cache.get(cid)  # type: ignore[union-attr]
    assert again is not cached and (again.version, again.contractor["name"]) == (version + 2, "Stored K.K.")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_with_verify_cached_an_interrupt_while_bringing_up_to_date_leaves_nothing_cached(
        app: ContractsApplication, reopen: Callable[[], ContractsApplication | None]) -> None:
    """A KeyboardInterrupt (or any BaseException) between two of the newer events leaves the cached
    object half-moved: it is evicted before the interrupt goes on, so a later command reads the
    stored state, not the half-moved one."""
    other, cid, version, cached = cached_then_changed_elsewhere(app, reopen, "Other K.K.", "Other 2 K.K.")
    get = app.events.get

    def interrupted(originator_id: object, **kwargs: object) -> object:
        found = iter(list(get(originator_id, **kwargs)))  # type: ignore[arg-type]
        if kwargs.get("gt") is None:
            return found

        def events() -> object:
            yield next(found)
            raise KeyboardInterrupt
        return events()

    app.events.get = interrupted  # type: ignore[method-assign]
    app.verify_cached = True
    with pytest.raises(KeyboardInterrupt):
        app.change_contractor(cid, {**CONTRACTOR, "name": "Stored K.K."}, jst(2026, 6, 3))
    assert cached.version == version + 1  # moved by the first newer event only
    with pytest.raises(KeyError):  # evicted
        app.repository.cache.get(cid)  # type: ignore[union-attr]
    app.events.get = get  # type: ignore[method-assign]
    result = app.change_contractor(cid, {**CONTRACTOR, "name": "Stored K.K."}, jst(2026, 6, 3))
    assert result.version == version + 3
    assert app.get_contract(cid).contractor["name"] == "Stored K.K."


def test_private_copy_shares_exactly_the_immutable_values(app: ContractsApplication) -> None:
    """Issue 21: values are shared by their exact type first (a set lookup), with the same choices
    as before: immutable values, enums and frozen dataclasses shared; lists, dicts, sets and the
    mutable dataclasses copied, at every depth."""
    from application import aggregate_state
    from domain.contract import State

    cid = monthly_to_june(app)
    original = app.repository.get(cid)
    copied = private_copy(original)
    assert copied.state is original.state is State.ACTIVE and State in aggregate_state._IMMUTABLE
    assert copied.plan is original.plan and copied.first_month is original.first_month
    ledger, ledger_copy = original.ledger, copied.ledger
    assert ledger_copy is not ledger and ledger_copy.invoices is not ledger.invoices
    assert len(ledger.invoices) == 3  # April, May and June (first month April, Art. 8.1)
    for invoice_id, invoice in ledger.invoices.items():
        twin = ledger_copy.invoices[invoice_id]
        assert twin is not invoice and twin == invoice and twin.lines is not invoice.lines
        assert all(a is b for a, b in zip(twin.lines, invoice.lines, strict=True))  # frozen lines: shared
        assert twin.invoice_id is invoice.invoice_id and twin.due_on is invoice.due_on
    copied.contractor["name"] = "Changed K.K."
    assert original.contractor["name"] == CONTRACTOR["name"]
