"""Crashes: ``kill -9`` of the API process and of the projection runner at random moments
(seeded) while clients send commands, at least 20 times; each killed process is restarted.

Clients send unique commands with Idempotency-Keys and retry with the same key after a
connection error. Acknowledged = answered 2xx. Afterwards: every acknowledged command is stored
exactly once (nothing lost), no command is stored twice (nothing applied twice), the read models
caught up by the restarted runners equal a clean rebuild, and no process log has a stack trace
of an unhandled request error.
"""

from __future__ import annotations

import random
import time

import pytest
from reliability_kit import CommandLoad, Deployment, count_effects, dump_difference, record_figures

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

SEED = 20261123
API_KILLS = 11
RUNNER_KILLS = 11


def test_kill_9_api_and_runner_during_load(deployment: Deployment) -> None:
    started = time.monotonic()
    deployment.mode = "production"
    key = deployment.create_key("billing", "crash-client")
    runner, api = deployment.runner(), deployment.api()
    api.start_ready()  # first: it creates the tables (two processes creating them at once collide)
    runner.start()
    load = CommandLoad(api.base, key, "CRASH", workers=3)
    load.start()

    rnd = random.Random(SEED)
    plan = ["api"] * API_KILLS + ["runner"] * RUNNER_KILLS
    rnd.shuffle(plan)
    restart_seconds: list[float] = []
    try:
        time.sleep(1.0)
        for victim in plan:
            time.sleep(rnd.uniform(0.2, 1.2))  # a random moment of the load
            if victim == "runner":
                runner.kill9()
                runner.start()
            else:
                api.kill9()
                restart_seconds.append(api.start_ready())
        time.sleep(1.5)  # some load after the last fault
    finally:
        load.finish()
    load_seconds = time.monotonic() - started

    outcomes = load.outcomes()
    assert outcomes["error"] == outcomes["refused"] == outcomes["gave_up"] == 0, (outcomes, load.tally.samples)
    assert outcomes["ack"] >= 50, outcomes
    deployment.wait_projections()
    api.stop()
    runner.stop()

    effects = count_effects(deployment, load.sent)
    assert not effects.lost, f"acknowledged but not stored: {effects.lost[:5]}"
    assert not effects.duplicates, f"stored more than once: {effects.duplicates}"
    incremental, rebuilt, rebuild_seconds = deployment.projections_vs_rebuild()
    assert incremental == rebuilt, dump_difference(incremental, rebuilt)
    logs = deployment.logs()
    assert "Exception in ASGI application" not in logs and "unhandled error" not in logs

    faults = api.kills + runner.kills
    assert faults >= 20 and api.kills == API_KILLS and runner.kills == RUNNER_KILLS
    record_figures("crash_recovery", {
        "commands": len(load.sent), "acknowledged": effects.acknowledged, "replayed": load.tally["replayed"],
        "unresolved_in_progress": outcomes["unresolved"], "stored_unresolved": len(effects.stored_unresolved),
        "stored_unresolved_kinds": sorted(s.kind for s in effects.stored_unresolved),
        "transport_errors": sum(1 for s in load.sent for x in s.statuses if isinstance(x, str)),
        "faults": faults, "api_kills": api.kills, "runner_kills": runner.kills,
        "restarts": api.starts - 1 + runner.starts - 1,
        "api_restart_s_median": round(sorted(restart_seconds)[len(restart_seconds) // 2], 2),
        "events_lost": len(effects.lost), "duplicates": len(effects.duplicates),
        "events": len(deployment.stored_events()), "load_s": round(load_seconds, 1),
        "rebuild_s": round(rebuild_seconds, 1), "total_s": round(time.monotonic() - started, 1)})


def test_takeover_of_a_crashed_claim_does_not_apply_the_command_twice(scratch_url: str) -> None:
    """The state ``kill -9`` leaves when it lands between the event's commit and the recording of
    the response (the crash test above hits that window about once per run): the event is stored,
    the claim is still ``in_progress``. The client retries with the same key after the 2-minute
    takeover delay; the command must not be stored again."""
    import uuid
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from reliability_kit import InProcessApi, apply_body

    from api.auth import hash_key
    from api.idempotency import _request_hash
    from api.schemas import ContractorIn

    api = InProcessApi.start(scratch_url, mode="production")
    try:
        c, h = api.client, api.headers
        cid = c.post("/v1/contracts", json=apply_body("TAKEOVER-1"), headers=h()).json()["contract_id"]
        path, body = f"/v1/contracts/{cid}/contractor", {"contractor": {"name": "Taken Over K.K."}}
        key, principal = "crash-window-1", api.store.find_key(hash_key(api.keys["billing"])).name
        request = SimpleNamespace(method="POST", url=SimpleNamespace(path=path), headers={})
        wall = datetime.now(UTC) - timedelta(minutes=3)  # the crashed request claimed the key 3 minutes ago
        fingerprint = _request_hash(request, ContractorIn(**body))
        assert api.store.claim_idempotency(key, principal, fingerprint, wall,
                                           stale_before=wall - timedelta(minutes=2),
                                           expired_before=wall - timedelta(hours=24)) is None
        # ... and committed its event (with its receipt, in the same transaction), then died:
        from api.schemas import Contractor
        from application.command_receipts import receipt_scope
        with receipt_scope(f"idempotency\x1f{principal}\x1f{key}", fingerprint):
            api.services.app.change_contractor(uuid.UUID(cid), Contractor(name="Taken Over K.K.").as_dict(),
                                               datetime.now(UTC))
        retry = c.post(path, json=body, headers=h(Idempotency_Key=key))
        names = [e["data"]["contractor"]["name"] for e in c.get(f"/v1/contracts/{cid}/events", headers=h()).json()[
            "events"] if e["type"] == "ContractorInfoChanged"]
        assert names.count("Taken Over K.K.") == 1, (retry.status_code, names)
        assert retry.status_code == 200 and retry.json()["recovered"] is True
        again = c.post(path, json=body, headers=h(Idempotency_Key=key))  # now replayed from the stored response
        assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    finally:
        api.close()
