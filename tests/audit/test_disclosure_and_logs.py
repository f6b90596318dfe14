"""Spec 10: disclosure requests (開示等の請求) get everything held about one contractor as one
document, and a clear answer once the data is erased; no personal data in logs or errors."""

from __future__ import annotations

import json
import logging

import pytest
from audit_kit import (
    CHANGED,
    CUSTOMER,
    EVIDENCE,
    PERSON,
    SECRETS,
    Store,
    erase_contractor_data,
    jst,
    leaked,
    run_lifecycle,
)

from application.audit import disclosure, export_records, replay, verify_chain
from domain.errors import NotFound


def test_spec10_disclosure_before_erasure_holds_everything(store: Store) -> None:
    run = run_lifecycle(store.app)
    doc = disclosure(store.app, customer_number=CUSTOMER, now=jst(2026, 10, 1))
    assert doc["customer_number"] == CUSTOMER and doc["erased"] is False
    [c] = doc["contracts"]
    assert c["contract_id"] == str(run.contract_id) and c["erased"] is False and c["erased_on"] is None
    assert c["current_contractor"] == CHANGED
    history = [(p["event"], p.get("contractor"), p.get("evidence")) for p in c["personal_data"]
               if p["event"] != "InvoiceIssued"]
    assert history == [("TrialStarted", PERSON, None), ("Applied", PERSON, None),
                       ("ContractorInfoChanged", CHANGED, None), ("SlaBreachClaimed", None, EVIDENCE)]
    # Art. 57-4(1) item 6: every issued invoice holds the recipient's name as it was on the issue date
    recipients = [p["recipient"] for p in c["personal_data"] if p["event"] == "InvoiceIssued"]
    assert len(recipients) == 5 and set(recipients) <= {PERSON["name"], CHANGED["name"]}
    assert len(c["events"]) == store.app.get_contract(run.contract_id).version
    assert [i["period"] for i in c["invoices"]] == ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08"]
    assert json.dumps(doc, ensure_ascii=False)  # one JSON document
    assert disclosure(store.app, contract_id=run.contract_id, now=jst(2026, 10, 1))["contracts"] == doc["contracts"]


def test_spec10_disclosure_after_erasure_says_so(store: Store) -> None:
    run = run_lifecycle(store.app)
    erase_contractor_data(store.app, run.contract_id)
    doc = disclosure(store.app, customer_number=CUSTOMER, now=jst(2026, 11, 1))
    assert doc["erased"] is True
    [c] = doc["contracts"]
    assert c["erased"] is True and c["erased_on"] == "2034-06-01"
    assert "erased on 2034-06-01" in c["statement"]
    retention = c["retention"]
    assert retention["stored_data"]["deletion_on"] == "2026-10-30"  # Art. 15.3: ended 08-31 + 60 days
    assert retention["contractor_data"]["records_kept_until"] == "2034-05-31"
    assert c["current_contractor"] is None and c["personal_data"] == []
    # amounts and dates are kept: the 5 period invoices and the 2 interest invoices (rule book 6, Art. 9.4)
    # of the late invoices settled on 2026-09-01 after the contract ended
    assert sorted(i["kind"] for i in c["invoices"]).count("interest") == 2 and len(c["invoices"]) == 7
    assert leaked(json.dumps(doc, ensure_ascii=False).encode()) == []


def test_disclosure_of_an_unknown_customer(store: Store) -> None:
    with pytest.raises(NotFound):
        disclosure(store.app, customer_number="NOBODY")


def test_spec10_no_personal_data_in_logs_or_errors(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    run = run_lifecycle(store.app)
    verify_chain(store.app)
    records = list(export_records(store.app))
    replay([json.dumps(r) for r in records], jst(2026, 11, 1).date(), store.app.policy.late_interest_rate)
    erase_contractor_data(store.app, run.contract_id)
    verify_chain(store.app, run.contract_id)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert f"key {run.contract_id} destroyed" in text  # the logs were captured
    assert "hash chain of store verified" in text
    assert leaked(text.encode()) == []
    assert run.refusals and leaked("\n".join(run.refusals).encode()) == []
    assert all(secret not in "\n".join(run.refusals) for secret in SECRETS)
