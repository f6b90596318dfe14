"""Issue 14.1: nothing read from the database is unpickled or executed.

The attack, as tried against the running service: someone who can write to the database (but
does not hold ``CONTRACTS_MASTER_KEY``) writes one ``contract_keys`` row (a data key of their own,
stored without a key-encryption wrap) and one snapshot row sealed with that key whose payload
runs code when unpickled (here: it creates a marker file, nothing else), then reads the contract
``?as_of=`` through the HTTP API as an auditor. Before the fix the API process unpickled the row
and ran the payload.

Now: the marker file never exists, the read answers (replayed from the events, or a clean
problem without a stack trace), and the bad row is reported in the log. Without a master key
(the data key stored as is, so the attacker can seal with the real key) the crafted row still
runs nothing: a snapshot is transcoded JSON, and a row that does not decode is replayed instead.
"""

from __future__ import annotations

import base64
import logging
import os
import pickle
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from reliability_kit import InProcessApi, apply_body

from infrastructure import snapshots as snap

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]


class _TouchMarker:
    """Unpickling this creates ``path`` (a harmless stand-in for a shell command)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.path,))


def _seal(key: bytes, contract_id: uuid.UUID, version: int, plain: bytes) -> bytes:
    """Sealed the way the snapshot store seals (AES-GCM, associated data naming contract and version)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plain, f"snapshot|{contract_id}|{version}".encode())


def _dsn(api: InProcessApi) -> tuple[str, str]:
    env = api.services.app.env
    dsn = psycopg.conninfo.make_conninfo(dbname=env.get("POSTGRES_DBNAME"), host=env.get("POSTGRES_HOST"),
                                         port=env.get("POSTGRES_PORT"), user=env.get("POSTGRES_USER"),
                                         password=env.get("POSTGRES_PASSWORD") or "")
    return dsn, str(env.get("POSTGRES_SCHEMA"))


@pytest.mark.parametrize("master_key", [True, False], ids=["master-key-set", "no-master-key"])
def test_a_crafted_snapshot_row_runs_nothing_and_the_as_of_read_answers(
        scratch_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        master_key: bool) -> None:
    if master_key:
        monkeypatch.setenv("CONTRACTS_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    else:
        monkeypatch.delenv("CONTRACTS_MASTER_KEY", raising=False)
    marker = tmp_path / "payload-ran"
    api = InProcessApi.start(scratch_url)
    try:
        created = api.client.post("/v1/contracts", json=apply_body(f"ATTACK-{uuid.uuid4().hex[:8]}"),
                                  headers=api.headers("billing", Idempotency_Key=uuid.uuid4().hex))
        assert created.status_code in (200, 201), created.text
        cid = uuid.UUID(created.json()["contract_id"])
        app = api.services.app
        for n in range(3):  # versions 3..5: enough for snapshots at versions 2 and 4
            app.change_contractor(cid, {**apply_body("x")["contractor"], "contact_name": f"C {n}"},
                                  datetime.now(UTC))
        api.read_models.wait_for(int(app.recorder.max_notification_id() or 0), timeout=30)
        assert snap.take_snapshots(app, [cid], every=2) == 2
        dsn, schema = _dsn(api)
        attacker_key = AESGCM.generate_key(bit_length=256)
        with psycopg.connect(dsn, autocommit=True) as conn:
            if master_key:  # the attacker's own data key, stored without a key-encryption wrap
                conn.execute(f'UPDATE "{schema}".contract_keys SET key = %s, kek = NULL WHERE contract_id = %s',
                             (attacker_key, cid))
            else:  # no master key: the stored data key is readable by whoever reads the table
                row = conn.execute(f'SELECT key FROM "{schema}".contract_keys WHERE contract_id = %s',
                                   (cid,)).fetchone()
                assert row is not None
                attacker_key = bytes(row[0])
            payload = zlib.compress(pickle.dumps(_TouchMarker(marker)))
            for (version,) in conn.execute(f'SELECT originator_version FROM "{schema}".contracts_snapshots '
                                           "WHERE originator_id = %s", (cid,)).fetchall():
                conn.execute(f'UPDATE "{schema}".contracts_snapshots SET state = %s '
                             "WHERE originator_id = %s AND originator_version = %s",
                             (_seal(attacker_key, cid, version, payload), cid, version))
        api.services.app.factory.keys._cache.clear()  # type: ignore[attr-defined]  # no cached key
        as_of = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        with caplog.at_level(logging.WARNING):
            r = api.client.get(f"/v1/contracts/{cid}", params={"as_of": as_of}, headers=api.headers("auditor"))
        assert not marker.exists(), "the crafted snapshot row was unpickled: its payload ran"
        if master_key:  # the unwrapped key row is refused: the contract's personal fields are unreadable
            assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem+json")
            assert "Traceback" not in r.text and attacker_key.hex() not in r.text
            reports = [rec.getMessage() for rec in caplog.records if str(cid) in rec.getMessage()
                       and "not wrapped" in rec.getMessage()]
            assert len(reports) == 1, [rec.getMessage() for rec in caplog.records]
        else:  # the row does not decode as a snapshot: reported, and the read replays the events
            assert r.status_code == 200, r.text
            assert r.json()["version"] == 5
            assert any(str(cid) in rec.getMessage() and "snapshot" in rec.getMessage() for rec in caplog.records)
    finally:
        api.close()
    assert not marker.exists()
