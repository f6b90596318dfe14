"""The aggregate cache (``CONTRACTS_AGGREGATE_CACHE_SIZE``) and the private copy each command works on.

Commands load the cached contract and mutate a copy (``private_copy``, in place of the library's
deepcopy, issue 7): a refused or conflicting command must leave the cached state exactly as
stored. Contract commands trust the cached state without a fast-forward read (issue 21): a state
made stale by another process is found out by the store (a conflict on save), and every outcome
that could depend on it (the conflict, a refusal, an If-Match mismatch) is decided again on the
stored events.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from app_kit import CONTRACTOR, jst, monthly_to_june, summary

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
    cached = app.repository.cache.get(cid)
    assert isinstance(cached, Contract) and cached.contractor["name"] != "Lost Update K.K."  # not the unsaved change
    now = app.get_contract(cid)  # fast-forwarded to what was really stored
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

