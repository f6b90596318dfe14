"""One time format and one id format in every answer (issue 19): instants are UTC with ``Z``,
ids are dashed UUIDs, in the contract, its events, invoices, claims, the outage, the feed, the
transfer and the disclosure (whose event payloads were the store's: ``+00:00`` and 32 hex digits).

Hand-computed instants: the sandbox clock at 10:00 JST is 01:00 UTC the same day (JST = UTC+9,
rule book 1)."""

from __future__ import annotations

import re
from typing import Any

from api_harness import Harness, iso, jst

OFFSET = re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?[+-]\d{2}:\d{2}$")  # an instant with a numeric offset
HEX_ID = re.compile(r"^[0-9a-f]{32}$")  # a UUID without its dashes
DASHED = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [s for k, v in value.items() if k != "stored" for s in strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in strings(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, str) else []


def assert_one_format(answer: Any) -> None:
    for path, text in strings(answer):
        assert not OFFSET.search(text), (path, text)
        assert not HEX_ID.match(text), (path, text)


def _decided_claim(api: Harness, answers: list[Any] | None = None) -> tuple[str, str, str]:
    """A contract with a decided SLA claim; the commands' answers are added to ``answers``."""
    answers = [] if answers is None else answers
    cid = api.concluded("FMT-1")  # approved at 2026-03-02 10:00 JST
    api.set_clock(jst(2026, 4, 1, 9))
    api.advance(cid)
    api.set_clock(jst(2026, 4, 7))
    outage = api.post("/v1/outages", {"service": "kintone", "started_at": iso(jst(2026, 4, 3)),
                                      "ended_at": iso(jst(2026, 4, 5)), "cause": "provider_network"}).json()
    claim = api.post(f"/v1/contracts/{cid}/sla-claims", {"outage_id": outage["outage_id"], "proof_of_payment": True,
                                                         "proof_of_breach": True}).json()
    paid = api.post("/v1/transfers", {"customer_number": "FMT-1", "payer_name": "ﾌｫｰﾏｯﾄ(ｶ",
                                      "bank_reference": "FMT-TR-1", "amount": 1_000, "value_date": "2026-04-07"})
    assert paid.status_code == 201, paid.text
    answers += [outage, claim, paid.json()]
    api.set_clock(jst(2026, 4, 8))
    decided = api.post(f"/v1/sla-claims/{claim['claim_id']}/decision", {}, "operator")
    assert decided.status_code == 200, decided.text
    # one word for one thing (issue 19): the decision answers the claim's status ("decision" deprecated)
    assert (decided.json()["status"], decided.json()["decision"]) == ("granted", "granted")
    answers.append(decided.json())
    return cid, outage["outage_id"], claim["claim_id"]


def test_every_answer_writes_instants_in_utc_z_and_ids_dashed(api: Harness) -> None:
    commands: list[Any] = []
    cid, oid, claim_id = _decided_claim(api, commands)
    for answer in commands:
        assert_one_format(answer)
    transfer_id = commands[2]["id"]
    answers = {path: api.get(path, "operator") for path in (
        f"/v1/contracts/{cid}", f"/v1/contracts/{cid}/events", f"/v1/contracts/{cid}/invoices",
        f"/v1/contracts/{cid}/sla-claims", f"/v1/sla-claims/{claim_id}", f"/v1/outages/{oid}",
        f"/v1/contracts/{cid}/disclosure", "/v1/events", "/v1/clock", "/v1/customers/FMT-1/account",
        f"/v1/transfers/{transfer_id}")}
    for path, answer in answers.items():
        assert answer.status_code == 200, (path, answer.text)
        assert_one_format(answer.json())
    # the decision at 2026-04-08 10:00 JST = 01:00 UTC (Art. 20.1: the provider decides)
    claim = answers[f"/v1/sla-claims/{claim_id}"].json()
    assert claim["decided_at"] == "2026-04-08T01:00:00Z"
    listed = answers[f"/v1/contracts/{cid}/sla-claims"].json()["data"][0]
    assert listed["decided_at"] == "2026-04-08T01:00:00Z"
    outage = answers[f"/v1/outages/{oid}"].json()
    assert (outage["started_at"], outage["ended_at"]) == ("2026-04-03T01:00:00Z", "2026-04-05T01:00:00Z")
    transfer = answers[f"/v1/transfers/{transfer_id}"].json()
    assert transfer["received_at"] == "2026-04-07T01:00:00Z"  # recorded 10:00 JST


def test_the_disclosure_writes_its_events_as_the_api_does(api: Harness) -> None:
    cid, _, claim_id = _decided_claim(api)
    document = api.get(f"/v1/contracts/{cid}/disclosure", "operator").json()
    assert document["generated_at"] == "2026-04-08T01:00:00Z"  # the service clock, 10:00 JST
    (contract,) = document["contracts"]
    assert contract["contract_id"] == cid
    events = {e["event"]: e for e in contract["events"]}
    approved = events["Approved"]
    assert approved["recorded_at"].endswith("Z") and approved["payload"]["timestamp"] == approved["recorded_at"]
    assert approved["payload"]["at"] == "2026-03-02T01:00:00Z"  # approved 10:00 JST
    claimed = events["SlaBreachClaimed"]
    assert claimed["payload"]["claim_id"] == claim_id and DASHED.match(claimed["payload"]["claim_id"])
    for invoice in contract["invoices"]:
        assert DASHED.match(invoice["invoice_id"]) and invoice["contract_id"] == cid
