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


def test_the_limit_comes_before_the_key_and_the_413_names_the_request(api: Harness) -> None:
    """One layer (``api.observability.RequestMiddleware``): the body limit is checked before the API
    key (an oversized body without a key is 413, not 401), and its 413 echoes the request id."""
    r = api.client.post("/v1/contracts", content=b"{" + b" " * (2 * MB) + b"}",
                        headers={"Content-Type": "application/json", "X-Request-ID": "big-1"})
    assert r.status_code == 413 and r.headers["x-request-id"] == "big-1"
    assert r.json()["detail"] == "request bodies are limited to 1048576 bytes"


def test_a_chunked_body_is_counted_even_with_a_content_length(api: Harness) -> None:
    """``Transfer-Encoding: chunked`` wins over a declared length (RFC 9112 6.3), so such a body is
    counted too: a small declared length does not let 3 MiB through."""
    def chunks():
        for _ in range(3):
            yield b" " * MB

    headers = api.headers("billing", Content_Type="application/json", Transfer_Encoding="chunked")
    headers["Content-Length"] = "10"
    r = api.client.post("/v1/contracts", content=chunks(), headers=headers)
    assert r.status_code == 413
