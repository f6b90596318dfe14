"""The HTTP baseline: a bare FastAPI app on the same server doing one raw INSERT (POST) or one
SELECT (GET) per request through a psycopg pool, with sync endpoints (run in the threadpool,
like the service's). ``BENCH_DSN`` names the database; the table is ``raw_http``.

    BENCH_DSN=postgresql://... .venv/bin/python -m uvicorn bench.bare_app:app --port 8766
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from fastapi import FastAPI, Request
from psycopg_pool import ConnectionPool
from starlette.responses import Response

pool = ConnectionPool(os.environ["BENCH_DSN"], min_size=4, max_size=20, kwargs={"autocommit": True}, open=True)
app = FastAPI()
TOPIC = "domain.contract:Contract.ContractorInfoChanged"


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/raw/events", status_code=201)
async def insert(request: Request) -> Response:
    body: dict[str, Any] = json.loads(await request.body())
    state = json.dumps(body).encode()
    response: Response = await _run_sync(_insert, state)
    return response


def _insert(state: bytes) -> Response:
    with pool.connection() as conn:
        row = conn.execute("INSERT INTO raw_http (originator_id, originator_version, topic, state) "
                           "VALUES (%s, 1, %s, %s) RETURNING notification_id", (uuid.uuid4(), TOPIC, state),
                           prepare=True).fetchone()
    assert row is not None
    return Response(json.dumps({"position": row[0]}), status_code=201, media_type="application/json")


@app.get("/raw/events/{position}")
def select(position: int) -> Response:
    with pool.connection() as conn:
        row = conn.execute("SELECT originator_id, originator_version, topic, state FROM raw_http "
                           "WHERE notification_id = %s", (position,), prepare=True).fetchone()
    if row is None:
        return Response('{"detail":"not found"}', status_code=404, media_type="application/json")
    document = {"id": str(row[0]), "version": row[1], "topic": row[2], "state": bytes(row[3]).decode()}
    return Response(json.dumps(document), media_type="application/json")


async def _run_sync(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
