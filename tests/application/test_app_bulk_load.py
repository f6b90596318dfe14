"""``ContractsApplication.get_contracts``: many contracts read at once (the sweep's chunks, issue 7).

On SQLite and PostgreSQL the recorder reads every event of the chunk in one query and the
contract keys in one more (``BulkEventReader``); the in-memory store loads them one by one.
Either way the result must be exactly what ``get_contract`` gives for each id.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from app_kit import CONTRACTOR, invoice, jst, lines, monthly_to_june, summary
from conftest import Store

from application.service import BulkEventReader
from domain.contract import Contract
from domain.personal_data import ERASED


def test_bulk_read_equals_reading_one_by_one(store: Store) -> None:
    app = store.open()
    ids = [monthly_to_june(app, {**CONTRACTOR, "name": f"Company {n}"}) for n in range(3)]
    app.change_contractor(ids[1], {**CONTRACTOR, "name": "Renamed K.K."}, jst(2026, 5, 1))
    outage = app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11),
                               _cause(), jst(2026, 6, 13)).aggregate_id
    unknown = uuid.uuid4()
    assert isinstance(app.recorder, BulkEventReader) is (store.kind != "popo")

    fresh = app if store.kind == "popo" else store.open()  # a second application: nothing cached
    loaded = fresh.get_contracts([*ids, unknown, outage])

    assert set(loaded) == set(ids)  # no contract under the unknown id, and an outage is not a contract
    for cid in ids:
        contract = loaded[cid]
        assert isinstance(contract, Contract)
        assert summary(contract) == summary(app.get_contract(cid))
    # personal fields are opened with each contract's key
    names = [c.contractor["name"] for c in loaded.values() if isinstance(c, Contract)]
    assert sorted(names) == ["Company 0", "Company 2", "Renamed K.K."]
    # Art. 8.1 / 9.2: April is the first month: campaign 1,200 x 10 + initial fee 10,000, tax 10 %
    april = invoice(app, ids[0], "2026-04")
    assert (lines(april), april.total) == ({"campaign_fee": 12000, "initial_fee": 10000, "tax": 2200}, 24200)
    first = loaded[ids[0]]
    assert isinstance(first, Contract) and first.ledger.invoices[april.invoice_id].total == 24200


def test_bulk_read_after_data_deletion_reads_erased_personal_data_and_keeps_amounts(store: Store) -> None:
    """Spec 10 / Art. 13: after ContractorDataErased the keys are gone; amounts and dates still replay.
    Ended 2026-06-10, last invoice 2026-06-01 (fiscal year to 2027-03-31, filed by
    2027-05-31, + 7 years), all paid: erased 2034-06-01."""
    app = store.open()
    cid = monthly_to_june(app)
    app.terminate_for_cause(cid, "Art. 23.1.1", jst(2026, 6, 10))
    for inv in list(app.get_contract(cid).ledger.invoices.values()):
        app.record_payment(cid, inv.invoice_id, inv.total, date(2026, 6, 20), jst(2026, 6, 20))
    # Art. 9.4, rule book 6: April's 24,200 due 05-31 paid 06-20 (19 days) -> floor(24200 x 0.145 x 19 / 365)
    # = 182 yen, billed on an interest invoice at once (the contract has ended), paid too
    interest = next(i for i in app.get_contract(cid).ledger.invoices.values() if i.kind == "interest")
    assert interest.total == 182
    app.record_payment(cid, interest.invoice_id, 182, date(2026, 6, 20), jst(2026, 6, 20))
    before = app.get_contract(cid)
    app.erase_contractor_data(cid, date(2034, 6, 1))
    fresh = app if store.kind == "popo" else store.open()
    contract = fresh.get_contracts([cid])[cid]
    assert isinstance(contract, Contract)
    assert contract.contractor == app.get_contract(cid).contractor
    assert "Example Trading" not in repr(contract.contractor)
    if store.kind != "popo":  # sealed stores: the history's personal fields now read as erased
        applied = [e for e in fresh.events.get(cid) if type(e).__name__ == "Applied"]
        assert applied[0].contractor == ERASED["contractor"]
    totals = [sorted(i.total for i in c.ledger.invoices.values()) for c in (contract, before)]
    assert totals[0] == totals[1] == [182, 13200, 13200, 24200]
    assert summary(contract) == summary(app.get_contract(cid))


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_bulk_read_fetches_the_keys_in_one_query_not_one_per_contract(store: Store,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app = store.open()
    ids = [monthly_to_june(app) for _ in range(4)]
    fresh = store.open()
    keys: Any = fresh.recorder.keys  # type: ignore[attr-defined]
    single_reads: list[uuid.UUID] = []
    real_read = keys._read

    def counting_read(contract_id: uuid.UUID) -> Any:
        single_reads.append(contract_id)
        return real_read(contract_id)

    monkeypatch.setattr(keys, "_read", counting_read)
    loaded = fresh.get_contracts(ids)
    assert all(isinstance(c, Contract) and c.contractor == CONTRACTOR for c in loaded.values())
    assert single_reads == []  # every key came from the one prefetch query
    fresh.get_contract(ids[0])
    assert single_reads == []  # and stays cached for the command that follows


def _cause() -> Any:
    from domain.sla import OutageCause

    return OutageCause.PROVIDER_NETWORK
