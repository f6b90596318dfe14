"""Integrity attacks of issue 14 (items 2, 3, 5, 8), each reproduced against PostgreSQL as an
attacker with some access would try it; each failed on 957dcd3.

- item 2: an Idempotency-Key reused after its 24 h retention, with another command;
- item 3: one outage sent twice (``+09:00`` and ``Z``), to two API processes at the same moment;
- item 5: the event table rewritten from inside the database (edit with recomputed hashes,
  truncation, a deleted contract, two events' global order swapped), against a signed checkpoint;
- item 8: submitted values echoed in errors, the payer reference in clear in the store, shown to
  auditors and surviving erasure.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from reliability_kit import (
    EVENTS_TABLE,
    Deployment,
    InProcessApi,
    apply_body,
    assert_problem,
    record_figures,
)

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

JST = timezone(timedelta(hours=9))


# --------------------------------------------------------------------------- item 2


def test_idempotency_key_reused_after_its_retention_never_answers_done(scratch_url: str) -> None:
    """The key's record is 25 hours old (as a day later); the same key now carries another
    command. On 957dcd3 that answered 200 ``"recovered": true`` with the old contract and did not
    run the command. Now: 422 naming the header, nothing stored; the original request is still
    recognised; a fresh key runs the command."""
    api = InProcessApi.start(scratch_url, mode="production")
    try:
        c, h = api.client, api.headers
        first = c.post("/v1/contracts", json=apply_body("RETAIN-1"), headers=h(Idempotency_Key="reused-key"))
        assert first.status_code == 201, first.text
        with psycopg.connect(scratch_url, autocommit=True) as conn:  # a day passes
            aged = conn.execute(sql.SQL("UPDATE {} SET created_at = created_at - interval '25 hours'").format(
                sql.Identifier("public", "idempotency_keys"))).rowcount
        assert aged == 1
        before = api.events()
        other = c.post("/v1/contracts", json=apply_body("RETAIN-2"), headers=h(Idempotency_Key="reused-key"))
        body = assert_problem(other, 422)
        assert body["type"] == "urn:contracts:problem:idempotency-key-reused" and body["field"] == "Idempotency-Key"
        assert api.events() == before, "nothing may be stored for the refused request"
        same = c.post("/v1/contracts", json=apply_body("RETAIN-1"), headers=h(Idempotency_Key="reused-key"))
        assert same.status_code == 200 and same.json()["recovered"] is True
        assert same.json()["aggregate_id"] == first.json()["contract_id"]
        fresh = c.post("/v1/contracts", json=apply_body("RETAIN-2"), headers=h(Idempotency_Key="another-key"))
        assert fresh.status_code == 201 and api.events() > before
        record_figures("idempotency_after_retention", {"reused_after_retention": 1, "skipped_commands": 0})
    finally:
        api.close()


# --------------------------------------------------------------------------- item 3


def test_one_outage_sent_to_two_servers_at_once_is_recorded_and_credited_once(deployment: Deployment) -> None:
    """Two API processes on one database; each round sends one outage to both at the same moment,
    one spelled ``+09:00`` and one ``Z`` (or shifted by an hour: overlapping). On 957dcd3 both
    were stored (two outages, two claims, two credits). Now exactly one is 201 and the other is
    409 naming spec 8 and the stored outage; a contract can claim only once."""
    key = deployment.create_key("operator", "outage-racer")
    first, second = deployment.api("api-1"), deployment.api("api-2")
    first.start_ready()  # one at a time: two processes creating the tables at once collide (item 9)
    second.start_ready()
    # a fresh connection per request: a kept-alive one the server closes after its idle timeout
    # (5 s; a loaded CI round can take longer) is reset under the next request, which is not the race
    fresh = httpx.Limits(max_keepalive_connections=0)
    a = httpx.Client(base_url=first.base, headers={"X-API-Key": key}, timeout=30, limits=fresh)
    b = httpx.Client(base_url=second.base, headers={"X-API-Key": key}, timeout=30, limits=fresh)
    assert a.put("/v1/clock", json={"now": "2026-03-02T10:00:00+09:00"}).status_code == 200
    cid = a.post("/v1/contracts", json=apply_body("OUTAGE-1")).json()["contract_id"]
    assert a.post(f"/v1/contracts/{cid}/approve").status_code == 200
    assert a.put("/v1/clock", json={"now": "2026-06-30T10:00:00+09:00"}).status_code == 200

    rounds, statuses = 12, []
    for n in range(rounds):
        began = datetime(2026, 4, 1, 0, 0, tzinfo=UTC) + timedelta(days=4 * n)
        tokyo = {"service": "kintone", "started_at": began.astimezone(JST).isoformat(),
                 "ended_at": (began + timedelta(hours=30)).astimezone(JST).isoformat(), "cause": "provider_network"}
        shift = timedelta(hours=n % 2)
        zulu = {**tokyo, "started_at": (began + shift).isoformat().replace("+00:00", "Z"),
                "ended_at": (began + shift + timedelta(hours=30)).isoformat().replace("+00:00", "Z")}
        barrier, answers = threading.Barrier(2), {}

        def send(name: str, client: httpx.Client, body: dict[str, str], barrier: threading.Barrier = barrier,
                 answers: dict[str, httpx.Response] = answers) -> None:
            barrier.wait()
            answers[name] = client.post("/v1/outages", json=body)

        threads = [threading.Thread(target=send, args=("a", a, tokyo)),
                   threading.Thread(target=send, args=("b", b, zulu))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        codes = sorted(r.status_code for r in answers.values())
        statuses.append(codes)
        assert codes == [201, 409], [(r.status_code, r.text[:300]) for r in answers.values()]
        won = next(r for r in answers.values() if r.status_code == 201).json()["outage_id"]
        refused = assert_problem(next(r for r in answers.values() if r.status_code == 409), 409)
        assert refused["article"] == "Art. 20" and refused["existing_outage_id"] == won
    outages = [e for e in deployment.stored_events() if e[3] == "OutageRecorded"]
    assert len(outages) == rounds
    # the attack's goal: credit twice for the same hours. One outage, one claim.
    last = outages[0][1]
    claim = a.post(f"/v1/contracts/{cid}/sla-claims", json={"outage_id": last, "proof_of_payment": True,
                                                              "proof_of_breach": True})
    assert claim.status_code == 201, claim.text
    again = b.post(f"/v1/contracts/{cid}/sla-claims", json={"outage_id": last, "proof_of_payment": True,
                                                              "proof_of_breach": True})
    assert_problem(again, 409)
    logs = deployment.logs()
    assert "Exception in ASGI application" not in logs and "unhandled error" not in logs
    record_figures("outage_recorded_once", {"rounds": rounds, "servers": 2, "stored": len(outages),
                                            "refused_409": rounds, "double_credits": 0})


# --------------------------------------------------------------------------- item 5


def _verify_cli(deployment: Deployment, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """``contracts audit verify --json`` run in this process (as the CLI would, with the
    deployment's environment): much faster than a new interpreter per check."""
    import contextlib
    import io
    import os

    from api.cli import main

    saved = {k: v for k, v in os.environ.items() if k.startswith("CONTRACTS_")}
    out = io.StringIO()
    try:
        for k in saved:
            del os.environ[k]
        os.environ.update({k: v for k, v in (env or deployment.env).items() if k.startswith("CONTRACTS_")})
        with contextlib.redirect_stdout(out):
            code = main(["audit", "verify", "--json", *args])
    finally:
        for k in [k for k in os.environ if k.startswith("CONTRACTS_")]:
            del os.environ[k]
        os.environ.update(saved)
    assert code in (0, 1), out.getvalue()[-2000:]
    return code, json.loads(out.getvalue())


class _Rows:
    """Raw access to the event and hash tables, as an attacker with the database password has."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.events = sql.Identifier("public", EVENTS_TABLE)
        self.hashes = sql.Identifier("public", "contracts_event_hashes")

    def take(self, where: str, params: tuple[Any, ...]) -> list[tuple[list[Any], list[Any]]]:
        """Delete the events matching ``where`` and their hashes; return them for ``put_back``."""
        taken = []
        for table in (self.events, self.hashes):
            cur = self.conn.execute(sql.SQL("DELETE FROM {} WHERE " + where + " RETURNING *").format(table), params)
            taken.append(([d.name for d in cur.description or []], cur.fetchall()))
        return taken  # type: ignore[return-value]

    def put_back(self, taken: list[tuple[list[Any], list[Any]]]) -> None:
        for table, (columns, rows) in zip((self.events, self.hashes), taken, strict=True):
            for row in rows:
                self.conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    table, sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns))), row)

    def close(self) -> None:
        self.conn.close()


def test_tampering_from_inside_the_database_is_detected_by_a_signed_checkpoint(deployment: Deployment,
                                                                              tmp_path: Path) -> None:
    """A live deployment signs a checkpoint (``contracts audit checkpoint --out``: the auditor's
    file). Then, one at a time and each undone before the next, an attacker with the database
    password: edits a payment's amount and recomputes the chain hashes; deletes the newest
    events of the log; deletes a whole contract; swaps two events' global positions. On
    957dcd3 every one passed ``contracts audit verify``; the chain alone still passes each, and
    ``verify --checkpoint FILE`` (public key only) and ``verify`` (the store's latest) exit 1
    naming what changed. Undone, verify passes again: nothing else was touched."""
    from infrastructure.checkpoint_keys import Ed25519Signer, new_private_key

    private = new_private_key()
    public = Ed25519Signer(private).public_key
    deployment.extra_env.update({"CONTRACTS_CHECKPOINT_KEY": private, "CONTRACTS_CHECKPOINT_DIR": str(tmp_path / "cp")})
    key = deployment.create_key("operator", "auditee")
    api = deployment.api(with_projections=True)
    api.start_ready()
    http = httpx.Client(base_url=api.base, headers={"X-API-Key": key}, timeout=30)
    # the module's database is shared: its sandbox clock only moves forward, past the other tests' dates
    assert http.put("/v1/clock", json={"now": "2026-07-02T10:00:00+09:00"}).status_code == 200
    cids = []
    for n in range(4):
        r = http.post("/v1/contracts", json=apply_body(f"TAMPER-{n}"))
        assert r.status_code == 201, r.text
        cids.append(r.json()["contract_id"])
        assert http.post(f"/v1/contracts/{cids[-1]}/approve").status_code == 200
    assert http.put("/v1/clock", json={"now": "2026-08-02T10:00:00+09:00"}).status_code == 200
    deadline = time.monotonic() + 30
    while not (invoices := http.get(f"/v1/contracts/{cids[0]}/invoices").json()["invoices"]):
        assert time.monotonic() < deadline, "the month start did not run"
        time.sleep(0.1)
    payment = {"invoice_id": invoices[0]["invoice_id"], "amount": invoices[0]["total"], "paid_on": "2026-08-02"}
    paid = http.post(f"/v1/contracts/{cids[0]}/payments", json=payment)
    assert paid.status_code == 200, paid.text
    api.stop()  # a quiet store: the sandbox scheduler adds nothing while the attacker works

    exported = tmp_path / "auditor-checkpoint.json"
    deployment.cli("audit", "checkpoint", "--out", str(exported))
    document = json.loads(exported.read_text())
    assert list((tmp_path / "cp").iterdir()), "CONTRACTS_CHECKPOINT_DIR holds a copy"
    auditor = deployment.env | {"CONTRACTS_CHECKPOINT_KEY": ""}
    assert _verify_cli(deployment, "--checkpoint", str(exported), "--public-key", public)[0] == 0

    rows = _Rows(deployment.url)
    found: dict[str, list[str]] = {}

    def detected(name: str) -> None:
        code, chain_only = _verify_cli(deployment, env=auditor)  # no key: the chain alone
        assert code == 0 and "checkpoint" not in chain_only, f"{name}: the chain alone should not see it"
        for args in (("--checkpoint", str(exported), "--public-key", public), ()):  # the file; the store's latest
            code, report = _verify_cli(deployment, *args)
            assert code == 1 and report["checkpoint"]["ok"] is False, (name, args, report)
        found[name] = [d["kind"] for d in report["checkpoint"]["differences"]]

    try:
        # 1. an amount edited, every later hash of the contract recomputed
        before = rows.conn.execute(sql.SQL("SELECT e.originator_version, e.state FROM {} e WHERE e.originator_id = %s "
                                           "AND e.topic LIKE %s").format(rows.events),
                                   (cids[0], "%PaymentReceived")).fetchone()
        assert before is not None
        originals = rows.conn.execute(sql.SQL("SELECT originator_version, hash FROM {} WHERE originator_id = %s")
                                      .format(rows.hashes), (cids[0],)).fetchall()
        edited = bytes(before[1]).replace(b'"amount":', b'"amount":1', 1)
        rows.conn.execute(sql.SQL("UPDATE {} SET state = %s WHERE originator_id = %s AND originator_version = %s")
                          .format(rows.events), (edited, cids[0], before[0]))
        _recompute_chain(rows, cids[0])
        detected("edited")
        rows.conn.execute(sql.SQL("UPDATE {} SET state = %s WHERE originator_id = %s AND originator_version = %s")
                          .format(rows.events), (bytes(before[1]), cids[0], before[0]))
        for version, digest in originals:
            rows.conn.execute(sql.SQL("UPDATE {} SET hash = %s WHERE originator_id = %s AND originator_version = %s")
                              .format(rows.hashes), (digest, cids[0], version))
        assert _verify_cli(deployment)[0] == 0

        # 2. the newest three events of the log deleted (a shorter, valid chain)
        last = document["position"]
        newest = rows.conn.execute(sql.SQL("SELECT originator_id, originator_version FROM {} "
                                           "WHERE notification_id > %s").format(rows.events), (last - 3,)).fetchall()
        taken = [rows.take("originator_id = %s AND originator_version = %s", tuple(r)) for r in newest]
        detected("truncated")
        for t in taken:
            rows.put_back(t)
        assert _verify_cli(deployment)[0] == 0

        # 3. a whole contract deleted
        taken = [rows.take("originator_id = %s", (cids[2],))]
        detected("deleted")
        rows.put_back(taken[0])
        assert _verify_cli(deployment)[0] == 0

        # 4. two events of two contracts swap their global positions
        a, b = (rows.conn.execute(sql.SQL("SELECT min(notification_id) FROM {} WHERE originator_id = %s")
                                  .format(rows.events), (c,)).fetchone()[0] for c in (cids[1], cids[3]))
        for old, new in ((a, -1), (b, a), (-1, b)):
            rows.conn.execute(sql.SQL("UPDATE {} SET notification_id = %s WHERE notification_id = %s")
                              .format(rows.events), (new, old))
        detected("reordered")
        for old, new in ((a, -1), (b, a), (-1, b)):
            rows.conn.execute(sql.SQL("UPDATE {} SET notification_id = %s WHERE notification_id = %s")
                              .format(rows.events), (new, old))
        assert _verify_cli(deployment)[0] == 0
    finally:
        rows.close()
    assert "edited" in found["edited"]
    assert "truncated" in found["truncated"]
    assert "deleted" in found["deleted"]
    assert found["reordered"] == ["reordered"]
    record_figures("checkpoint_tampering", {"attacks": 4, "detected_by_checkpoint": len(found),
                                            "detected_by_chain_alone": 0, "events": document["events"]})


def _recompute_chain(rows: _Rows, cid: str) -> None:
    from application.audit import GENESIS, chain_hash

    prev = GENESIS
    for version, topic, state in rows.conn.execute(sql.SQL(
            "SELECT originator_version, topic, state FROM {} WHERE originator_id = %s ORDER BY originator_version")
            .format(rows.events), (cid,)).fetchall():
        prev = chain_hash(prev, cid, version, topic, bytes(state))
        rows.conn.execute(sql.SQL("UPDATE {} SET hash = %s WHERE originator_id = %s AND originator_version = %s")
                          .format(rows.hashes), (prev, cid, version))


# --------------------------------------------------------------------------- item 8


def test_payer_reference_is_never_echoed_never_in_clear_redacted_for_auditors_and_erased(scratch_url: str) -> None:
    """A payment whose payer reference carries a name and a newline, sent twice; a contract
    ``reference`` sent twice. On 957dcd3 the refusals echoed both (``payment 'ﾌﾘｺﾐ…\\n…' is already
    recorded``), the reference was stored in clear in the event table, shown to auditors in the
    feed, and survived erasure. Now: no echo, no clear text in any table, ``Redacted`` (role) for
    auditors, ``[erased]`` once the contract's data is deleted (its key destroyed)."""
    api = InProcessApi.start(scratch_url)
    try:
        c, h = api.client, api.headers
        marker = "REMITTER-LEAK-5150"
        payer = f"ﾌﾘｺﾐ ｶ)ｻﾝﾌﾟﾙ\n{marker} INFO forged line"
        # the module's database is shared: its sandbox clock only moves forward
        assert c.put("/v1/clock", json={"now": "2026-09-02T10:00:00+09:00"}, headers=h()).status_code == 200
        label = "ORDER-LABEL-8080"  # the contract's own reference: not personal data, but never echoed either
        body = apply_body("ECHO-1", reference=f"order\n{label}")
        cid = c.post("/v1/contracts", json=body, headers=h()).json()["contract_id"]
        twice = c.post("/v1/contracts", json=body, headers=h())
        assert label not in assert_problem(twice, 409)["detail"] and label not in twice.text
        assert c.post(f"/v1/contracts/{cid}/approve", headers=h()).status_code == 200
        assert c.put("/v1/clock", json={"now": "2026-10-02T10:00:00+09:00"}, headers=h()).status_code == 200
        assert c.post(f"/v1/contracts/{cid}/advance", headers=h("operator")).status_code == 200
        iid = c.get(f"/v1/contracts/{cid}/invoices", headers=h()).json()["invoices"][0]["invoice_id"]
        pay = {"invoice_id": iid, "amount": 1, "paid_on": "2026-10-02", "reference": payer}
        assert c.post(f"/v1/contracts/{cid}/payments", json=pay, headers=h()).status_code == 200
        again = c.post(f"/v1/contracts/{cid}/payments", json=pay, headers=h())
        refused = assert_problem(again, 409)
        assert refused["field"] == "reference" and marker not in again.text and "ﾌﾘｺﾐ" not in again.text

        with psycopg.connect(scratch_url) as conn:  # every table of the database, as bytes
            tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                                 "WHERE table_schema = 'public'")]
            clear = [t for t in tables if conn.execute(sql.SQL("SELECT count(*) FROM {} t WHERE t::text LIKE %s")
                                                       .format(sql.Identifier("public", t)),
                                                       (f"%{marker}%",)).fetchone()[0]
                     and t not in ("contracts_events", "contracts_event_hashes")]
            events_clear = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE topic LIKE %s AND "
                                                "convert_from(state, 'UTF8') LIKE %s")
                                        .format(sql.Identifier("public", EVENTS_TABLE)),
                                        ("%PaymentReceived", f"%{marker}%")).fetchone()[0]
        assert events_clear == 0, "the payer reference is stored in clear"
        assert clear == [], f"the payer reference in clear in {clear}"

        feed = c.get("/v1/events", params={"limit": 1000}, headers=h("auditor")).json()["events"]
        (payment,) = [e for e in feed if e["type"] == "PaymentReceived" and e["aggregate_id"] == cid]
        withheld = {"object": "redacted", "redacted": True, "reason": "role"}  # rule book 10 (issue 19)
        assert payment["data"]["reference"] == withheld and marker not in str(feed)
        operator = c.get(f"/v1/contracts/{cid}/events", headers=h("operator")).json()["events"]
        assert [e["data"]["reference"] for e in operator if e["type"] == "PaymentReceived"] == [payer]

        # erasure (the key destroyed by ContractorDataErased) is in tests/audit/test_payer_reference.py
        record_figures("payer_reference", {"echoed": 0, "tables_in_clear": 0, "auditor_sees": withheld})
    finally:
        api.close()
