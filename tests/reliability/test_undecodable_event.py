"""One damaged event damages nothing else (issue 14, item 4).

Faults injected straight into the event table of a scratch PostgreSQL database, as someone
with write access to it (or a bad disk) would: one bit flipped in a sealed personal field, and
an event's JSON cut short, once in events the projections had already applied and once in an
event they had not read yet. Then, against the app in this process:

- the global feed answers 200 and marks exactly the damaged positions as undecodable;
- ``GET …/verify`` answers 200 with ``ok: false`` naming the damaged event and its position;
- a read of a damaged contract is a problem naming the event (no stack trace), while the other
  contracts are read and changed as before and the projections keep up with them;
- ``rebuild`` succeeds, lists what it could not apply, and leaves the clean contracts' invoices
  and deadlines as they were; a rebuild that fails half-way leaves the live tables untouched.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import date
from typing import Any

import psycopg
import pytest
from reliability_kit import InProcessApi, apply_body, assert_problem, record_figures

from application.projections.projector import Projector
from infrastructure.read_side import RebuildFailed

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

EVENTS = "public.contracts_events"
UNTIL = date(2027, 12, 31)


def _row(url: str, cid: str, topic_suffix: str) -> tuple[int, bytes]:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT notification_id, state FROM {EVENTS} WHERE originator_id = %s "
                           "AND topic LIKE %s ORDER BY originator_version DESC LIMIT 1",
                           (uuid.UUID(cid), "%" + topic_suffix)).fetchone()
    assert row is not None, (cid, topic_suffix)
    return int(row[0]), bytes(row[1])


def _write(url: str, position: int, state: bytes) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(f"UPDATE {EVENTS} SET state = %s WHERE notification_id = %s", (state, position))


def flip_sealed_bit(url: str, cid: str) -> int:
    """One bit of the ciphertext of the contractor field of the contract's ``Applied`` event."""
    position, state = _row(url, cid, ".Applied")
    doc = json.loads(state)

    def first_sealed(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("_type_") == "sealed":
                return node["_data_"]
            for value in node.values():
                if (found := first_sealed(value)) is not None:
                    return found
        return None

    sealed = first_sealed(doc)
    raw = bytearray(base64.b64decode(sealed["enc"]))
    raw[20] ^= 0x01
    sealed["enc"] = base64.b64encode(bytes(raw)).decode()
    _write(url, position, json.dumps(doc, separators=(",", ":")).encode())
    return position


def cut_short(url: str, cid: str, topic_suffix: str) -> int:
    position, state = _row(url, cid, topic_suffix)
    _write(url, position, state[: len(state) // 2])
    return position


def _contract(api: InProcessApi, customer: str) -> str:
    c, h = api.client, api.headers
    r = c.post("/v1/contracts", json=apply_body(customer), headers=h())
    assert r.status_code == 201, r.text
    cid = str(r.json()["contract_id"])
    assert c.post(f"/v1/contracts/{cid}/approve", headers=h()).status_code == 200
    return cid


def test_one_undecodable_event_damages_nothing_else(scratch_url: str) -> None:
    api = InProcessApi.start(scratch_url)
    try:
        damaged, a, b, cc, d, b_invoices, b_deadlines = _damage(scratch_url, api)
    finally:
        api.close()
    fresh = InProcessApi.start(scratch_url)  # a new process: no aggregate cached from before the damage
    try:
        _check(scratch_url, fresh, damaged, a, b, cc, d, b_invoices, b_deadlines)
    finally:
        fresh.close()


def _damage(scratch_url: str, api: InProcessApi) -> tuple[dict[str, int], str, str, str, str, Any, Any]:
    c, h = api.client, api.headers
    a, b, cc = (_contract(api, f"DMG-{n}-{uuid.uuid4().hex[:6]}") for n in "ABC")
    assert c.put("/v1/clock", json={"now": "2026-04-01T10:00:00+09:00"}, headers=h("operator")).status_code == 200
    for cid in (a, b, cc):  # April: the first invoice of each (Art. 8, 9)
        assert c.post(f"/v1/contracts/{cid}/advance", headers=h("operator")).status_code == 200
    b_invoices = c.get(f"/v1/contracts/{b}/invoices", headers=h()).json()["invoices"]
    assert len(b_invoices) == 1
    b_deadlines = [x for x in api.read_models.deadlines_until(UNTIL) if str(x.aggregate_id) == b]
    assert b_deadlines

    # a contract whose events the projections have not read yet when one of them is damaged
    api.read_models.stop()
    d = str(c.post("/v1/contracts", json=apply_body(f"DMG-D-{uuid.uuid4().hex[:6]}"), headers=h()).json()
            ["contract_id"])
    damaged = {"sealed_bit": flip_sealed_bit(scratch_url, a), "cut_after_projection": cut_short(
        scratch_url, cc, ".ServicePeriodStarted"), "cut_before_projection": cut_short(scratch_url, d, ".Applied")}
    return damaged, a, b, cc, d, b_invoices, b_deadlines


def _check(scratch_url: str, fresh: InProcessApi, damaged: dict[str, int], a: str, b: str, cc: str, d: str,
           b_invoices: Any, b_deadlines: Any) -> None:
    c, h = fresh.client, fresh.headers
    # the feed marks the damaged events and carries on
    r = c.get("/v1/events", params={"after": 0, "limit": 1000}, headers=h("auditor"))
    assert r.status_code == 200, r.text[:500]
    marked = {e["position"]: e for e in r.json()["events"] if e.get("undecodable")}
    assert set(marked) == set(damaged.values())
    assert all(e["data"] is None and e["reason"] for e in marked.values())
    assert len(r.json()["events"]) > len(marked)
    # verify names the damaged event and its position
    for cid, position in ((a, damaged["sealed_bit"]), (cc, damaged["cut_after_projection"])):
        r = c.get(f"/v1/contracts/{cid}/verify", headers=h("auditor"))
        assert r.status_code == 200, r.text[:500]
        report = r.json()
        assert report["ok"] is False
        assert position in {br["position"] for br in report["broken"]}
        assert any("cannot be decoded" in br["reason"] for br in report["broken"] if br["position"] == position)
    # reads of a damaged contract: a problem naming the event, never a stack trace
    for cid in (a, cc, d):
        for path in ("", "/invoices", "/events"):
            problem = assert_problem(c.get(f"/v1/contracts/{cid}{path}", headers=h()), 500)
            assert problem["type"].endswith("event-undecodable") and problem["aggregate_id"] == cid
    problem = assert_problem(c.post(f"/v1/contracts/{a}/contractor", json={"contractor": {"name": "X K.K."}},
                                    headers=h()), 500)
    assert problem["type"].endswith("event-undecodable")
    # the auditors' page of a damaged contract says so (no incident), the clean one renders
    assert c.post("/ui/login", data={"key": fresh.keys["auditor"]}, follow_redirects=False).status_code == 303
    page = c.get(f"/ui/contracts/{a}")
    assert page.status_code == 500 and "Damaged history" in page.text and "incident" not in page.text
    assert c.get(f"/ui/contracts/{b}").status_code == 200
    # everything else goes on: reads and commands of B, read-your-writes, the projections
    assert c.get(f"/v1/contracts/{b}", headers=h()).status_code == 200
    started = time.monotonic()
    r = c.post(f"/v1/contracts/{b}/payments", json={"invoice_id": b_invoices[0]["invoice_id"], "amount": 1,
                                                      "paid_on": "2026-04-01"}, headers=h())
    took = time.monotonic() - started
    assert r.status_code == 200, r.text[:500]
    assert took < 4.0, f"the command waited {took:.1f}s for lagging read models"
    assert c.get(f"/v1/contracts/{b}/invoices", headers=h()).json()["invoices"][0]["paid"] == 1
    last = fresh.events()
    assert fresh.read_models.position() == last
    not_applied = {row.position: row for row in fresh.read_models.damaged_events()}
    assert damaged["cut_before_projection"] in not_applied
    assert not_applied[damaged["cut_before_projection"]].aggregate_id == uuid.UUID(d)

    # a rebuild succeeds, stops the damaged contracts only and lists what it did not apply
    live = fresh.read_models.store.dump()
    fresh.read_models.runner.rebuild(progress=False, batch_size=7)
    rebuilt = fresh.read_models.store.dump()
    not_applied = {row.position: row for row in fresh.read_models.damaged_events()}
    # the projections never open sealed fields, so A's altered ciphertext does not stop them: its
    # amounts and dates are intact; the two events cut short stop their contracts
    assert {damaged["cut_after_projection"], damaged["cut_before_projection"]} <= set(not_applied)
    assert damaged["sealed_bit"] not in not_applied
    assert {str(row.aggregate_id) for row in not_applied.values()} == {cc, d}
    b_rows = [row for row in rebuilt["rm_invoices"] if row[1] == b]
    assert b_rows == [row for row in live["rm_invoices"] if row[1] == b]
    assert c.get(f"/v1/contracts/{b}/invoices", headers=h()).json()["invoices"][0]["paid"] == 1
    assert [x for x in fresh.read_models.deadlines_until(UNTIL) if str(x.aggregate_id) == b] == b_deadlines
    assert rebuilt["tracking"] == [(last,)]

    # a rebuild that fails half-way changes nothing
    calls = {"n": 0}
    original = Projector.process

    def failing(self: Projector, batch: Any, source: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected fault in the middle of a rebuild")
        return original(self, batch, source)

    Projector.process = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(RebuildFailed, match="live read tables are unchanged"):
            fresh.read_models.runner.rebuild(progress=False, batch_size=5)
    finally:
        Projector.process = original  # type: ignore[method-assign]
    assert fresh.read_models.store.dump() == rebuilt
    with psycopg.connect(scratch_url) as conn:
        shadows = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'rb\\_%'").fetchone()
    assert shadows == (0,)
    record_figures("undecodable_event", {"damaged": len(damaged), "not_applied": len(not_applied),
                                         "events": last, "command_seconds": round(took, 3)})
