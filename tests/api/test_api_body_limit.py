"""Oversized request bodies are refused before parsing: 413 problem+json, nothing stored."""

from __future__ import annotations

from api_harness import Harness

MB = 1_048_576


def test_declared_oversized_body_is_413_problem(api: Harness) -> None:
    before = api.event_count()
    r = api.client.post("/v1/contracts", content=b"{" + b" " * (2 * MB) + b"}",
                        headers=api.headers("billing", Content_Type="application/json"))
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("payload-too-large")
    assert api.event_count() == before


def test_chunked_oversized_body_is_413_problem(api: Harness) -> None:
    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(3):
            yield b" " * MB

    headers = api.headers("billing", Content_Type="application/json")
    r = api.client.post("/v1/contracts", content=chunks(), headers=headers)
    assert r.status_code == 413 and r.json()["status"] == 413


def test_normal_bodies_pass(api: Harness) -> None:
    assert api.apply()  # a regular application still goes through
