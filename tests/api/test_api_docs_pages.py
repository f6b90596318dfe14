"""``/docs`` from packaged assets (no CDN: it works offline) and ``GET /`` for browsers and clients."""

from __future__ import annotations

import os

from api_harness import Harness

from api.api_docs import redoc_assets


def test_swagger_ui_is_served_from_packaged_assets_without_a_key(api: Harness) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "/docs/assets/swagger-ui.css" in page.text
    assert "cdn.jsdelivr.net" not in page.text and "https://" not in page.text.split("<body>")[0]
    script = api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000  # the real bundle, not a stub
    assert api.client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert api.client.get("/docs/assets/index.html").status_code == 401  # only the named assets are public


def test_redoc_is_served_from_packaged_assets_without_a_key(api: Harness) -> None:
    """/redoc was FastAPI's page loading ReDoc from a CDN (blank offline). With ``fastapi-offline``
    installed (a dependency) it is ReDoc from that package's bundle; an environment installed before
    the dependency was added still gets the redirect to /docs, never the CDN page."""
    redoc = api.client.get("/redoc", follow_redirects=False)
    if redoc_assets() is None:
        assert os.environ.get("CI") != "true", "fastapi-offline (a dependency) is not installed"
        assert redoc.status_code == 307 and redoc.headers["location"] == "/docs"
        return
    assert redoc.status_code == 200 and "text/html" in redoc.headers["content-type"]
    assert '<redoc spec-url="/openapi.json">' in redoc.text and "/redoc/assets/redoc.standalone.js" in redoc.text
    assert "https://" not in redoc.text  # no CDN, no web fonts
    script = api.client.get("/redoc/assets/redoc.standalone.js")
    assert script.status_code == 200 and len(script.content) > 500_000  # the real bundle, not a stub
    assert api.client.get("/redoc/assets/favicon.png").status_code == 200
    assert api.client.get("/redoc/assets/swagger-ui-bundle.js").status_code == 401  # only the named assets


def test_root_sends_a_browser_to_the_ui_and_answers_a_client_with_links(api: Harness) -> None:
    browser = api.client.get("/", headers={"Accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/ui/"
    client = api.client.get("/", headers={"Accept": "application/json"})
    assert client.status_code == 200
    links = client.json()
    assert (links["openapi"], links["docs"], links["ui"]) == ("/openapi.json", "/docs", "/ui/")
    assert api.client.get(links["openapi"]).json()["openapi"].startswith("3.")


def test_the_ui_pages_keep_their_strict_content_security_policy(api: Harness) -> None:
    login = api.client.get("/ui/login")
    policy = login.headers.get("content-security-policy", "")
    assert "default-src 'none'" in policy and "script-src" not in policy
