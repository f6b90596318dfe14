"""Racing writers: 1,000 concurrent commands over HTTP on the same four contracts.

A real ``contracts serve`` (uvicorn) and a ``contracts projections run`` process on a scratch
PostgreSQL database. Every command stores exactly one event when it wins (a payment of 1 yen on
the contract's invoice, or a change of contractor information); most carry ``If-Match`` with the
version the client just read, some carry no precondition, half carry an Idempotency-Key.

Checked: every 2xx names its stored event (``X-Position``, ``ETag``) and that event exists once,
with the answered version; every loser is 409 (race) or 412 (stale If-Match) problem+json and
stored nothing (the stored events after the setup are exactly the winners'); the invoices'
paid amounts equal the number of winning payments; the read models equal a clean rebuild.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from reliability_kit import Deployment, apply_body, assert_problem, dump_difference, record_figures

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

COMMANDS = 1000
CONTRACTS = 4
WORKERS = 24
SEED = 20261123


@dataclass
class Command:
    n: int
    contract: int
    kind: str  # "payment" | "contractor"
    if_match: bool
    idempotency_key: str | None


@dataclass
class Answer:
    command: Command
    status: int
    position: int | None
    etag: str | None
    body: dict[str, Any]
    content_type: str


def _wait_quiet(deployment: Deployment, quiet: float = 2.5, timeout: float = 30.0) -> list[Any]:
    """Wait until no event has been stored for ``quiet`` seconds (the sandbox scheduler's sweep)."""
    deadline = time.monotonic() + timeout
    events = deployment.stored_events(settlement=False)
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "events kept arriving during setup"
        time.sleep(0.25)
        now = deployment.stored_events(settlement=False)
        if len(now) != len(events):
            events, since = now, time.monotonic()
    return events


def test_racing_writers_store_exactly_the_winners(deployment: Deployment) -> None:
    started = time.monotonic()
    key = deployment.create_key("billing", "racer")
    runner, api = deployment.runner(), deployment.api()
    api.start_ready()  # first: it creates the tables (two processes creating them at once collide)
    runner.start()
    http = httpx.Client(base_url=api.base, headers={"X-API-Key": key}, timeout=30)

    # -- setup: four concluded monthly contracts with an April invoice each (sandbox clock)
    assert http.put("/v1/clock", json={"now": "2026-03-02T10:00:00+09:00"}).status_code == 200
    cids = []
    for i in range(CONTRACTS):
        r = http.post("/v1/contracts", json=apply_body(f"RACE-{i}"))
        assert r.status_code == 201, r.text
        cids.append(r.json()["contract_id"])
        assert http.post(f"/v1/contracts/{cids[-1]}/approve").status_code == 200
    assert http.put("/v1/clock", json={"now": "2026-04-01T10:00:00+09:00"}).status_code == 200
    invoice_ids = []
    deadline = time.monotonic() + 30
    for cid in cids:  # the scheduler's sweep starts the service periods (one invoice each)
        while not (invoices := http.get(f"/v1/contracts/{cid}/invoices").json()["invoices"]):
            assert time.monotonic() < deadline, "the month start did not run"
            time.sleep(0.1)
        invoice_ids.append(invoices[0]["invoice_id"])
    before = _wait_quiet(deployment)
    receipts_before = len(deployment.stored_events(receipts=True))
    setup_seconds = time.monotonic() - started

    # -- the race
    rnd = random.Random(SEED)
    commands = [Command(n, rnd.randrange(CONTRACTS), "payment" if rnd.random() < 0.7 else "contractor",
                        rnd.random() < 0.8, str(uuid.uuid4()) if rnd.random() < 0.5 else None)
                for n in range(COMMANDS)]
    local = threading.local()

    def send(c: Command) -> Answer:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=api.base, headers={"X-API-Key": key}, timeout=60)
        cli: httpx.Client = local.client
        cid = cids[c.contract]
        headers = {}
        if c.if_match:
            got = cli.get(f"/v1/contracts/{cid}")
            assert got.status_code == 200, got.text
            headers["If-Match"] = got.headers["etag"]
        if c.idempotency_key:
            headers["Idempotency-Key"] = c.idempotency_key
        if c.kind == "payment":
            body = {"invoice_id": invoice_ids[c.contract], "amount": 1, "paid_on": "2026-04-01"}
            r = cli.post(f"/v1/contracts/{cid}/payments", json=body, headers=headers)
        else:
            body = {"contractor": {**apply_body("")["contractor"], "name": f"Racer {c.n} K.K."}}
            r = cli.post(f"/v1/contracts/{cid}/contractor", json=body, headers=headers)
        position = r.headers.get("x-position")
        return Answer(c, r.status_code, int(position) if position else None, r.headers.get("etag"), r.json(),
                      r.headers.get("content-type", ""))

    race_started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        answers = list(pool.map(send, commands))
    race_seconds = time.monotonic() - race_started
    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {200, 409, 412}, statuses

    winners = [a for a in answers if a.status == 200]
    losers = [a for a in answers if a.status != 200]
    for a in losers:
        kind = assert_problem(httpx.Response(a.status, headers={"content-type": a.content_type}, json=a.body))
        assert kind["type"].endswith("precondition-failed" if a.status == 412 else "conflict"), a.body
        assert a.position is None
    assert statuses[409] + statuses[412] > 0, "no contention: the test raced nothing"

    # -- every 2xx has exactly one stored event, and nothing else was stored
    after = deployment.stored_events(settlement=False)
    new = {pos: (oid, version, name) for pos, oid, version, name in after[len(before):]}
    assert after[:len(before)] == before
    positions = [a.position for a in winners]
    assert len(set(positions)) == len(positions), "two answers name the same event"
    assert set(new) == set(positions), (f"stored {len(new)} events for {len(winners)} winners: "
                                        f"unanswered {sorted(set(new) - set(positions))[:5]}")
    for a in winners:
        assert a.body["events"] == 1 and a.etag == f'"{a.body["version"]}"', a.body
        oid, version, name = new[a.position]  # type: ignore[index]
        assert (oid, version) == (cids[a.command.contract], a.body["version"])
        assert name == ("PaymentReceived" if a.command.kind == "payment" else "ContractorInfoChanged")
    # each winner sent with an Idempotency-Key committed exactly one receipt with its event
    assert len(deployment.stored_events(receipts=True)) - receipts_before == sum(
        1 for a in winners if a.command.idempotency_key)

    # -- the read side agrees: 1 yen per winning payment, and equals a clean rebuild
    deployment.wait_projections()
    for i, cid in enumerate(cids):
        paid = http.get(f"/v1/contracts/{cid}/invoices").json()["invoices"][0]["paid"]
        assert paid == sum(1 for a in winners if a.command.contract == i and a.command.kind == "payment")
    http.close()
    api.stop()
    runner.stop()
    incremental, rebuilt, rebuild_seconds = deployment.projections_vs_rebuild()
    assert incremental == rebuilt, dump_difference(incremental, rebuilt)

    record_figures("racing_writers", {
        "commands": COMMANDS, "contracts": CONTRACTS, "workers": WORKERS, "status_200": statuses[200],
        "status_409": statuses[409], "status_412": statuses[412], "events_stored": len(new),
        "events_lost": 0, "duplicates": 0, "setup_s": round(setup_seconds, 1), "race_s": round(race_seconds, 1),
        "commands_per_s": round(COMMANDS / race_seconds, 1), "rebuild_s": round(rebuild_seconds, 1),
        "total_s": round(time.monotonic() - started, 1)})
