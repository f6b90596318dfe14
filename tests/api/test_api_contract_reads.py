"""GET /v1/contracts/{id} as the hot route answers it (``api.hot_routes``, issue 21) and with the
view rendered once per version and role (``api.views.RenderedContracts``): the same answer as
the declared route's, redacted per role (rule book 10: personal data; auditors read none), and never
stale: a change stored by another process is read with its version (ETag, rule book 3)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from api_harness import CONTRACTOR, Harness, iso, jst
from fastapi import Request

from api.context import ApiContext, context
from infrastructure.bootstrap import build_services
from infrastructure.settings import Settings


def test_hot_route_answers_as_the_declared_route(any_api: Harness) -> None:
    api = any_api
    cid = api.concluded("C-900")
    for role in ("billing", "auditor", "operator"):
        hot = api.get(f"/v1/contracts/{cid}", role)
        declared = api.get(f"/v1/contracts/{cid.upper()}", role)  # not the canonical spelling: FastAPI's route
        assert hot.status_code == declared.status_code == 200
        assert hot.content == declared.content
        assert {k: v for k, v in hot.headers.items() if k != "x-request-id"} == \
               {k: v for k, v in declared.headers.items() if k != "x-request-id"}
    assert api.get(f"/v1/contracts/{cid}", "billing").json()["contractor"]["name"] == CONTRACTOR["name"]
    assert api.get(f"/v1/contracts/{cid}", "auditor").json()["contractor"] == {
        "object": "redacted", "redacted": True, "reason": "role"}


def test_hot_routes_leave_overridden_dependencies_to_fastapi(api: Harness) -> None:
    """With ``app.dependency_overrides`` set (tests, embedding applications), a hot route declines
    and FastAPI's route solves the override: the hot GET and POST call the endpoint directly
    otherwise, and would skip it."""
    cid = api.concluded("C-901")
    app = api.client.app
    calls: list[str] = []

    async def counted(request: Request) -> ApiContext:
        calls.append(request.url.path)
        ctx: ApiContext = request.app.state.ctx
        return ctx

    app.dependency_overrides[context] = counted  # type: ignore[attr-defined]
    try:
        assert api.get(f"/v1/contracts/{cid}").status_code == 200
        changed = api.post(f"/v1/contracts/{cid}/contractor", {"contractor": {**CONTRACTOR, "name": "Over K.K."}})
        assert changed.status_code == 200, changed.text
    finally:
        app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert calls == [f"/v1/contracts/{cid}", f"/v1/contracts/{cid}/contractor"]
    assert api.get(f"/v1/contracts/{cid}").json()["contractor"]["name"] == "Over K.K."
    assert calls == [f"/v1/contracts/{cid}", f"/v1/contracts/{cid}/contractor"]  # hot again, not counted


def test_hot_route_errors_are_the_declared_routes(api: Harness) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    hot = api.get(f"/v1/contracts/{missing}")
    declared = api.get(f"/v1/contracts/{missing.upper()}")
    assert hot.status_code == declared.status_code == 404
    assert hot.headers["content-type"] == "application/problem+json"
    assert hot.json() == {**declared.json(), "instance": f"/v1/contracts/{missing}"}
    assert hot.json()["article"] == "rule book 3"
    assert api.get(f"/v1/contracts/{missing}", None).status_code == 401
    assert api.get("/v1/contracts/not-a-uuid").status_code == 422
    api.set_clock(jst(2026, 3, 7))
    outage = api.post("/v1/outages", {"service": "kintone", "started_at": iso(jst(2026, 3, 3)),
                                      "ended_at": iso(jst(2026, 3, 5)), "cause": "provider_network"})
    assert outage.status_code == 201, outage.text
    for _ in range(2):  # another aggregate's id is no contract, however often asked (rule book 3)
        assert api.get(f"/v1/contracts/{outage.json()['outage_id']}").status_code == 404


def test_a_change_by_another_process_is_read_with_its_version(tmp_path: Path, api: Harness) -> None:
    cid = api.concluded("C-901")
    first = api.get(f"/v1/contracts/{cid}")
    assert first.headers["etag"] == '"3"'
    other = build_services(Settings(sqlite_path=tmp_path / "contracts.sqlite", mode="sandbox"))  # type: ignore[call-arg]
    try:
        other.app.change_contractor(uuid.UUID(cid), {**CONTRACTOR, "name": "Renamed K.K."}, api.clock.now(), None)
    finally:
        other.close()
    for role, name in (("billing", "Renamed K.K."), ("auditor", None)):
        again = api.get(f"/v1/contracts/{cid}", role)
        assert again.headers["etag"] == '"4"' and again.json()["version"] == 4
        assert (again.json()["contractor"].get("name") if name else again.json()["contractor"]["reason"]) == \
               (name or "role")


def test_hot_command_route_refuses_bodies_as_the_declared_route(api: Harness) -> None:
    """POST /contractor (Art. 12) past FastAPI: a body FastAPI would refuse goes to FastAPI's route,
    so the refusal (415, 422 with the field) is the declared route's, and nothing is stored."""
    cid = api.concluded("C-902")
    events = api.event_count()
    cases: list[dict[str, Any]] = [
        {"content": b'{"contractor": {"name": "X"}}', "headers": {"Content-Type": "text/plain"}},
        {"content": b'{"contractor": ', "headers": {"Content-Type": "application/json"}},
        {"content": b'{"contractor": {"name": 7}}', "headers": {"Content-Type": "application/json"}},
        {"content": b'{}', "headers": {"Content-Type": "application/json"}},
        {"content": b"", "headers": {"Content-Type": "application/json"}},
    ]
    for case in cases:
        hot = api.client.post(f"/v1/contracts/{cid}/contractor", content=case["content"],
                              headers={**api.headers(), **case["headers"]})
        declared = api.client.post(f"/v1/contracts/{cid.upper()}/contractor", content=case["content"],
                                   headers={**api.headers(), **case["headers"]})
        assert hot.status_code == declared.status_code and hot.status_code in (415, 422), case
        assert hot.json() == {**declared.json(), "instance": f"/v1/contracts/{cid}/contractor"}, case
    assert api.event_count() == events
    changed = api.post(f"/v1/contracts/{cid}/contractor", {"contractor": {**CONTRACTOR, "name": "Hot K.K."}},
                       Idempotency_Key="hot-1")
    replayed = api.post(f"/v1/contracts/{cid}/contractor", {"contractor": {**CONTRACTOR, "name": "Hot K.K."}},
                        Idempotency_Key="hot-1")
    assert changed.status_code == replayed.status_code == 200 and changed.headers["etag"] == '"4"'
    assert replayed.headers["idempotent-replayed"] == "true" and replayed.content == changed.content
    assert api.get(f"/v1/contracts/{cid}").json()["contractor"]["name"] == "Hot K.K."  # read-your-writes


def test_hot_route_threads_run_in_the_requests_context() -> None:
    """Log lines written by an endpoint name the request (issue 20): the worker thread of a hot
    route sees the request's context variables, and its changes stay there."""
    from api.hot_routes import in_thread
    from infrastructure.log_safety import request_id

    async def call() -> tuple[str | None, str | None]:
        request_id.set("req-hot")
        seen = await in_thread(lambda: (request_id.get(), request_id.set("changed") and None)[0])
        return seen, request_id.get()

    assert asyncio.run(call()) == ("req-hot", "req-hot")
