"""Rule book section 3 over HTTP: a value the rules refuse is 422 naming the field, a command the
state does not allow is 409, a body that is not JSON is 415; ``article`` names an article of the
terms (or the rule book), never "spec N"."""

from __future__ import annotations

from api_harness import CONTRACTOR, Harness


def _apply_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"customer_number": "SC-1", "service": "kintone", "grade": "standard", "users": 10,
                               "contractor": CONTRACTOR, "billing_cycle": "monthly"}
    return body | overrides


def test_section_3_users_below_the_grade_minimum_is_422_naming_users(api: Harness) -> None:
    before = api.event_count()
    r = api.post("/v1/contracts", _apply_body(users=4))  # kintone standard: at least 5 users (catalog)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert (problem["type"], problem["field"], problem["article"]) == (
        "urn:contracts:problem:invalid-input", "users", "Art. 10.1")
    cid = api.concluded("SC-2")
    change = api.post(f"/v1/contracts/{cid}/changes", {"users": 3})
    assert change.status_code == 422 and change.json()["field"] == "users", change.text
    # only the concluded contract's Opened, Applied, Approved and its customer account's Opened,
    # ContractRegistered (rule book 7)
    assert api.event_count() == before + 5


def test_section_3_an_unknown_grade_is_422_listing_the_valid_grades_without_echoing(api: Harness) -> None:
    r = api.post("/v1/contracts", _apply_body(grade="platinum-xyz"))
    assert r.status_code == 422
    problem = r.json()
    assert problem["field"] == "grade" and problem["article"] == "Art. 7"
    # the sample catalog's kintone grades, in name order
    assert "valid: light, premium, standard" in problem["detail"]
    assert "platinum-xyz" not in r.text


def test_section_3_a_state_conflict_is_409(api: Harness) -> None:
    cid = api.concluded("SC-3")
    r = api.post(f"/v1/contracts/{cid}/reject", {"article": "Art. 2.4.1"})
    assert r.status_code == 409 and r.json()["article"] == "Art. 2.4"


def test_section_3_a_body_without_or_with_another_content_type_is_415(api: Harness) -> None:
    before = api.event_count()
    for headers in ({}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}):
        r = api.client.post("/v1/contracts", content=b'{"customer_number": "SC-4"}',
                            headers={**api.headers(), **headers})
        assert r.status_code == 415, (headers, r.text)
        problem = r.json()
        assert problem["type"] == "urn:contracts:problem:unsupported-media-type"
        assert problem["field"] == "Content-Type" and "valid dictionary" not in problem["detail"]
    ok = api.client.post("/v1/contracts", json=_apply_body(customer_number="SC-5"), headers=api.headers())
    assert ok.status_code == 201
    assert api.event_count() == before + 4  # Opened, Applied; the account's Opened, ContractRegistered


def test_articles_never_cite_the_spec_by_number(api: Harness) -> None:
    cid = api.concluded("SC-6")
    answers = [api.get("/v1/contracts/00000000-0000-0000-0000-000000000000"),
               api.post("/v1/contracts", _apply_body(service="nosuch")),
               api.post(f"/v1/contracts/{cid}/approve", None, If_Match='"1"')]
    for r in answers:
        assert r.status_code >= 400
        article = r.json()["article"]
        assert article is not None and not article.startswith("spec"), r.text
