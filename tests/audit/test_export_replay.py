"""Issue 6: ``export`` writes history as JSON Lines; ``replay`` recomputes state, invoices and
credits from that file alone, so an auditor can check the service's figures."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal

from audit_kit import CHANGED, EVIDENCE, Store, erase_contractor_data, leaked, run_lifecycle, settle

from application.audit import export_records, invoice_documents, replay, write_jsonl
from domain.personal_data import ERASED, REDACTED

AS_OF = date(2026, 11, 1)
RATE = Decimal("0.145")


def _export(store: Store, **kwargs: object) -> str:
    out = io.StringIO()
    write_jsonl(export_records(store.app, **kwargs), out)  # type: ignore[arg-type]
    return out.getvalue()


def test_export_replay_reproduces_the_services_figures(store: Store) -> None:
    run = run_lifecycle(store.app)
    text = _export(store, contract_id=run.contract_id)
    contract = store.app.get_contract(run.contract_id)
    lines = text.splitlines()
    assert len(lines) == contract.version
    first = json.loads(lines[0])
    assert {"position", "aggregate_id", "version", "event", "recorded_at", "payload", "stored", "hash"} <= set(first)

    result = replay(lines, AS_OF, RATE)  # no application, no database
    assert result["chains_ok"]
    [replayed] = result["contracts"]
    assert replayed["invoices"] == invoice_documents(contract, AS_OF, RATE)
    assert replayed["totals"]["invoiced"] == sum(i.total for i in contract.ledger.invoices.values())
    assert replayed["totals"]["late_interest"] == contract.ledger.late_interest(AS_OF, RATE)
    assert replayed["state"] == contract.state.value == "terminated"
    assert replayed["version"] == contract.version
    assert replayed["contractor"] == CHANGED
    assert [c["decision"] for c in replayed["sla_credits"]] == ["granted"]
    assert replayed["sla_credits"][0]["claim_id"] == str(run.claim_id)
    # the July invoice carries the fee reduction granted for the claim (Art. 20.1)
    july = next(i for i in replayed["invoices"] if i["period"] == "2026-07")
    assert any(line["kind"] == "sla_credit" and line["amount"] == -replayed["sla_credits"][0]["amount"]
               for line in july["lines"])


def test_whole_store_export_and_payload_shapes(store: Store) -> None:
    run = run_lifecycle(store.app)
    records = [json.loads(line) for line in _export(store).splitlines()]
    assert [r["position"] for r in records] == sorted(r["position"] for r in records)
    assert {"Opened", "TrialStarted", "OutageRecorded", "CreditGranted", "ContractorInfoChanged"} <= \
        {r["event"] for r in records}
    claimed = next(r for r in records if r["event"] == "SlaBreachClaimed")
    assert claimed["payload"]["evidence"] == EVIDENCE and claimed["sealed"] == ["evidence"]
    assert claimed["payload"]["received_on"] == "2026-06-20"  # dates as ISO strings
    renewed = next(r for r in records if r["event"] == "ServicePeriodStarted")
    assert renewed["payload"]["tax_rate"] == "0.10" and renewed["payload"]["month"] == "2026-04"
    assert leaked("".join(r["stored"] for r in records).encode()) == []  # the stored bytes are sealed
    result = replay(_export(store).splitlines(), AS_OF, RATE)
    assert result["chains_ok"] and [c["contract_id"] for c in result["contracts"]] == [str(run.contract_id)]
    assert result["other_aggregates"] == ["CustomerAccount", "InvoiceSequence", "Outage", "OutageLog"]


def test_redacted_export_has_no_personal_data_and_still_replays(store: Store) -> None:
    run = run_lifecycle(store.app)
    text = _export(store, contract_id=run.contract_id, redact=True)
    assert leaked(text.encode()) == []
    result = replay(text.splitlines(), AS_OF, RATE)
    assert result["chains_ok"]
    assert result["contracts"][0]["contractor"] == REDACTED["contractor"]
    contract = store.app.get_contract(run.contract_id)
    assert result["contracts"][0]["invoices"] == invoice_documents(contract, AS_OF, RATE)


def test_export_after_deletion_replays_with_erased_fields(store: Store) -> None:
    run = run_lifecycle(store.app)
    settle(store.app, run.contract_id)
    before = replay(_export(store, contract_id=run.contract_id).splitlines(), AS_OF, RATE)["contracts"][0]
    erase_contractor_data(store.app, run.contract_id)
    text = _export(store, contract_id=run.contract_id)
    assert leaked(text.encode()) == []
    after = replay(text.splitlines(), AS_OF, RATE)
    assert after["chains_ok"]
    [c] = after["contracts"]
    assert c["data_deleted"] and c["contractor"] == {}
    assert c["invoices"] == before["invoices"] and c["totals"] == before["totals"]
    trial = json.loads(text.splitlines()[1])
    assert trial["payload"]["contractor"] == ERASED["contractor"]


def test_replay_detects_an_edited_export(store: Store) -> None:
    run = run_lifecycle(store.app)
    lines = _export(store, contract_id=run.contract_id).splitlines()
    index = next(i for i, line in enumerate(lines) if '"event":"PaymentReceived"' in line)
    record = json.loads(lines[index])
    record["stored"] = record["stored"].replace('"amount":24200', '"amount":2420')
    lines[index] = json.dumps(record, ensure_ascii=False)
    result = replay(lines, AS_OF, RATE)
    assert not result["chains_ok"]
    assert result["contracts"][0]["chain"]["problem"] == f"version {record['version']}: stored bytes do not " \
                                                         "match the hash"
    # dropping a line is caught too
    result = replay(lines[:index] + lines[index + 1:], AS_OF, RATE)
    assert not result["chains_ok"]
    assert "missing" in result["contracts"][0]["chain"]["problem"]
