"""GET /v1/contracts/{id}/verify (issue 6): the hash chain of one contract over HTTP, on SQLite
and PostgreSQL; an edited row is named by contract and version."""

from __future__ import annotations

import uuid

from api_harness import Harness
from eventsourcing.postgres import PostgresDatastore


def _edit_stored_event(api: Harness, contract_id: str, version: int) -> None:
    recorder = api.app.recorder
    rows = {r.version: r for r in recorder.chain_rows(uuid.UUID(contract_id), None, 100)}  # type: ignore[attr-defined]
    edited = rows[version].state.replace(b"standard", b"premium")
    assert edited != rows[version].state
    table = recorder.events_table_name  # type: ignore[attr-defined]
    if isinstance(recorder.datastore, PostgresDatastore):  # type: ignore[attr-defined]
        with recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            conn.execute(f'UPDATE "{recorder.datastore.schema}"."{table}" SET state = %s '  # type: ignore[attr-defined]
                         "WHERE originator_id = %s AND originator_version = %s",
                         (edited, uuid.UUID(contract_id), version))
            conn.commit()
    else:
        with recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            c.execute(f"UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
                      (edited, uuid.UUID(contract_id).hex, version))


def test_spec_10_verify_reports_ok_then_names_the_edited_link(any_api: Harness) -> None:
    api = any_api
    cid = api.apply()  # Opened (v1) + Applied (v2): the plan snapshot names grade "standard"
    ok = api.get(f"/v1/contracts/{cid}/verify", role="auditor")
    assert ok.status_code == 200
    assert ok.json()["ok"] is True and ok.json()["checked"] == 2 and ok.json()["first_broken"] is None
    _edit_stored_event(api, cid, 2)
    broken = api.get(f"/v1/contracts/{cid}/verify", role="auditor").json()
    assert broken["ok"] is False
    assert broken["first_broken"]["aggregate_id"] == cid and broken["first_broken"]["version"] == 2
