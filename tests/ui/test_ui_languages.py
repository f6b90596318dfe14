"""Issue 20: the pages in Japanese and English. ``?lang=ja`` switches (and is remembered in a
cookie), ``Accept-Language: ja`` chooses Japanese by default, English otherwise; figures,
dates and articles are the same in both."""

from __future__ import annotations

from api_harness import Harness
from ui_kit import api_call, browser_client, make_history


def test_contract_page_in_japanese_and_english(api: Harness) -> None:
    made = make_history(api_call(api))
    client = browser_client(api, "auditor")
    path = f"/ui/contracts/{made.contract_id}"
    english = client.get(path).text
    assert '<html lang="en">' in english and "<h2>Invoices <span" in english and 'id="lang-ja"' in english
    r = client.get(path + "?lang=ja")
    assert r.status_code == 200
    assert "ui_lang=ja" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
    japanese = r.text
    assert '<html lang="ja">' in japanese
    assert "<h2>請求書 <span" in japanese and "<th>支払期日</th>" in japanese and "<dt>遅延損害金</dt>" in japanese
    assert '<span class="state active" id="state">利用中</span>' in japanese  # the state, as words
    assert "24,200" in japanese and "2026-05-31" in japanese and "Art. 9.3" in japanese  # figures unchanged
    assert "<h2>請求書 <span" in client.get(path).text  # remembered by the cookie
    client.get(path + "?lang=en")
    assert "<h2>Invoices <span" in client.get(path).text


def test_accept_language_chooses_the_default(api: Harness) -> None:
    made = make_history(api_call(api))
    client = browser_client(api, "auditor")
    path = f"/ui/contracts/{made.contract_id}"
    assert '<html lang="ja">' in client.get(path, headers={"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.8"}).text
    assert '<html lang="en">' in client.get(path, headers={"Accept-Language": "en-US,ja;q=0.5"}).text
    assert '<html lang="en">' in client.get(path + "?lang=xx").text  # an unknown language: the default
