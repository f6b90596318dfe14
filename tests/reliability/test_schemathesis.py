"""Bad input, generated: schemathesis against the app's own OpenAPI document, every operation
with every role's key, positive (schema-conforming) and negative (schema-violating) examples.

The app runs in this process over ASGI on a scratch PostgreSQL database (sandbox mode, no
scheduler). Bounded and reproducible: ``derandomize=True``, no example database, a fixed number
of examples per operation, role and mode. Contract-scoped operations also run against a real
concluded contract, so generated bodies reach the business rules, not only the 404.

Checked for every example: no 5xx (and no exception out of the app); every 4xx is
``application/problem+json``; a refused request stores no event; a role the operation does not
allow is 403.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from reliability_kit import PROBLEM_JSON, PROBLEM_KEYS, InProcessApi, apply_body, record_figures
from schemathesis.generation import GenerationMode

from api.auth import ROLES

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

EXAMPLES = 10  # per operation, allowed role and generation mode
FORBIDDEN_EXAMPLES = 2  # per operation and role it does not allow (always 403 before the body is read)


@pytest.fixture(scope="module")
def api(scratch_url: str) -> Iterator[InProcessApi]:
    api = InProcessApi.start(scratch_url)
    yield api
    api.close()


def _concluded_contract(api: InProcessApi) -> str:
    r = api.client.post("/v1/contracts", json=apply_body("FUZZ-1"), headers=api.headers())
    assert r.status_code == 201, r.text
    cid = str(r.json()["contract_id"])
    assert api.client.post(f"/v1/contracts/{cid}/approve", headers=api.headers()).status_code == 200
    return cid


def _fuzz(strategy: Any, examples: int, check: Any) -> bool:
    """Run ``check`` on up to ``examples`` cases; False when no case can be generated (a negative
    run of an operation with nothing to violate, e.g. ``GET /healthz``)."""
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=strategy)
    def run(case: Any) -> None:
        check(case)

    try:
        run()
    except Unsatisfiable:
        return False
    return True


def test_schemathesis_every_operation_every_role(api: InProcessApi) -> None:
    started = time.monotonic()
    cid = _concluded_contract(api)
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 24
    stats: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    def check(label: str, case: Any, role: str, allowed: tuple[str, ...] | None) -> None:
        before = api.events()
        try:
            r = case.call(headers=api.headers(role))
        except Exception as exc:  # an exception out of the app is a 500 the client never saw
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
            return
        stats["examples"] += 1
        statuses[r.status_code] += 1
        status, content_type = r.status_code, r.headers.get("content-type", [""])
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        if status >= 500:
            failures.append(f"{label}: {status} {r.text[:300]}")
        elif status >= 400:
            if not content_type.startswith(PROBLEM_JSON) or not PROBLEM_KEYS <= set(r.json()):
                failures.append(f"{label}: {status} is not problem+json: {content_type} {r.text[:200]}")
            if api.events() != before:
                failures.append(f"{label}: {status} but events were stored")
        if allowed is not None and role not in allowed and status != 403:
            failures.append(f"{label}: role {role} not allowed, yet {status}")

    runs = []
    for operation in operations:
        raw = operation.definition.raw
        allowed = tuple(raw.get("x-roles", ())) or None  # None: public (healthz, readyz)
        path_variants: list[dict[str, Any] | None] = [None]
        if "{contract_id}" in operation.path:
            path_variants.append({"contract_id": cid})
        for role in ROLES:
            permitted = allowed is None or role in allowed
            modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if permitted else [GenerationMode.POSITIVE]
            for mode in modes:
                for path_parameters in path_variants if permitted else [None]:
                    runs.append((operation, role, mode, path_parameters, allowed,
                                 EXAMPLES if permitted else FORBIDDEN_EXAMPLES))

    for operation, role, mode, path_parameters, allowed, examples in runs:
        label = f"{operation.method.upper()} {operation.path} as {role} ({mode.value}" \
                f"{', real contract' if path_parameters else ''})"
        strategy = operation.as_strategy(mode, path_parameters=path_parameters) if path_parameters \
            else operation.as_strategy(mode)

        generated = _fuzz(strategy, examples, lambda case, label=label, role=role, allowed=allowed: check(
            label, case, role, allowed))
        stats["runs" if generated else "runs_with_nothing_to_generate"] += 1

    assert not failures, f"{len(failures)} failures, e.g.:\n" + "\n".join(failures[:15])
    assert stats["examples"] >= 1200, stats
    record_figures("schemathesis", {
        "operations": len(operations), "runs": stats["runs"],
        "runs_with_nothing_to_generate": stats["runs_with_nothing_to_generate"], "examples": stats["examples"],
        "statuses": dict(sorted(statuses.items())), "examples_per_run": EXAMPLES, "failures": len(failures),
        "events_stored": api.events(), "total_s": round(time.monotonic() - started, 1)})
