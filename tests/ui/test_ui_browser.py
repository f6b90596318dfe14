"""The web pages in a real headless browser: Debian's chromium driven by Selenium through
Debian's chromedriver, against ``contracts serve`` (uvicorn, SQLite in a temporary folder,
sandbox mode) with keys made by ``contracts keys create``.

An auditor logs in with a key, searches the contract by customer number, opens it, reads the
April invoice and the total outstanding, moves the as-of date to before the payment and then
to before the later invoices existed, and sees the hand-computed figures (``ui_kit``); before
that it reads the dashboard and the contract list. Screenshots go to ``test-artifacts/``
(``ui-dashboard.png``, ``ui-contract.png``, ``ui-contract-today.png``).

``./dev`` installs chromium and chromium-driver when it runs as root. Without them the test is
skipped with the reason; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.live_server import LiveServer, create_key, installed_cli, live_server, sandbox_env
from ui_kit import CUSTOMER, EXPECTED, TODAY, make_history, yen

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--lang=en-US", "--window-size=1280,1000"]

pytestmark = pytest.mark.browser


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the browser test cannot run: {reason} (./dev installs chromium and "
                    "chromium-driver with apt-get when run as root)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    env = sandbox_env(tmp_path / "ui.sqlite")
    cli = installed_cli()
    keys = {role: create_key(env, role, f"ui-{role}", cli=cli, cwd=tmp_path)
            for role in ("billing", "auditor", "operator")}
    with live_server(env, keys=keys, cli=cli, cwd=tmp_path) as served:
        yield served
    assert not any(key in served.output for key in keys.values()), "an API key reached the server log"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        _missing(f"{CHROMIUM} or {CHROMEDRIVER} is not installed (Debian packages chromium, chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("the selenium package is not installed (dev extras)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def _figures(driver: Any) -> dict[str, tuple[int, int, int]]:
    from selenium.webdriver.common.by import By

    found = {}
    for block in driver.find_elements(By.CSS_SELECTOR, "tbody.invoice"):
        cells = {f: yen(block.find_element(By.CSS_SELECTOR, f'[data-field="{f}"]').text)
                 for f in ("total", "outstanding", "late_interest")}
        found[block.get_attribute("data-invoice")] = (cells["total"], cells["outstanding"], cells["late_interest"])
    return found


def _move_as_of(driver: Any, day: str) -> None:
    """Pick a date in the as-of date input as a person would (type it), then press Show."""
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, "as_of")
    year, month, dom = day.split("-")
    field.send_keys(month + dom + year)  # focuses the first part; en-US date input: mm dd yyyy
    if field.get_attribute("value") != day:  # another input order: set it through the element
        print(f"typing the date gave {field.get_attribute('value')!r}: setting it", file=sys.stderr)
        driver.execute_script("arguments[0].value = arguments[1];", field, day)
    assert field.get_attribute("value") == day
    driver.find_element(By.ID, "show").click()
    _wait(driver, lambda: f"as_of={day}" in driver.current_url)


def _wait(driver: Any, condition: Any, timeout: float = 15) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda _d: condition())


def _screenshot(driver: Any, path: Path) -> None:
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1280, min(max(height + 40, 800), 6000))
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), "the screenshot was not written"


def test_auditor_moves_the_as_of_date_and_sees_the_figures_change(browser: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    made = make_history(server.call)
    driver = browser

    # -- log in (the login page comes first), search by customer number, open the contract
    driver.get(server.base + "/ui/")
    _wait(driver, lambda: "/ui/login" in driver.current_url)
    driver.find_element(By.ID, "key").send_keys(server.keys["auditor"])
    driver.find_element(By.ID, "login").click()
    _wait(driver, lambda: driver.current_url.rstrip("?") == server.base + "/ui/")
    assert server.keys["auditor"] not in driver.current_url
    # -- the dashboard: one active contract, nothing overdue on 06-20 (May is due 06-30), the
    # store's chain intact; the contract list finds the customer by part of the number
    assert _text(driver, '#by-state [data-state="active"]') == "1"
    assert _text(driver, "#overdue-total") == "0" and "intact" in _text(driver, "#store-chain")
    assert not driver.find_elements(By.ID, "chain-alarm")
    _screenshot(driver, ARTIFACTS / "ui-dashboard.png")
    driver.get(server.base + "/ui/contracts?customer=" + CUSTOMER[2:])
    _wait(driver, lambda: driver.find_elements(By.ID, "contracts"))
    assert _text(driver, "#total") == "1"
    driver.get(server.base + "/ui/")
    driver.find_element(By.ID, "q").send_keys(CUSTOMER)
    driver.find_element(By.ID, "search").click()
    _wait(driver, lambda: driver.find_elements(By.ID, "results"))
    driver.find_element(By.CSS_SELECTOR, f'#results a[href="/ui/contracts/{made.contract_id}"]').click()
    _wait(driver, lambda: f"/ui/contracts/{made.contract_id}" in driver.current_url)

    # -- today (the service clock's 06-20): April paid late, 134 yen interest
    assert driver.find_element(By.ID, "as_of").get_attribute("value") == TODAY
    invoices, outstanding = EXPECTED[TODAY]
    assert _figures(driver) == invoices
    assert yen(_text(driver, "#outstanding-total")) == outstanding
    assert _text(driver, "#contractor") == "redacted"  # auditors see no personal data
    assert "intact" in _text(driver, "#chain")
    _screenshot(driver, ARTIFACTS / "ui-contract-today.png")

    # -- before the payment: April still owed, interest to 06-10
    _move_as_of(driver, "2026-06-10")
    invoices, outstanding = EXPECTED["2026-06-10"]
    assert _figures(driver) == invoices
    assert yen(_text(driver, "#outstanding-total")) == outstanding == 50_600
    assert _text(driver, '[data-invoice="2026-04"] [data-field="outstanding"]') == "24,200"
    assert "later event" in _text(driver, "#later")
    _screenshot(driver, ARTIFACTS / "ui-contract.png")

    # -- before the May and June invoices existed
    _move_as_of(driver, "2026-04-15")
    invoices, outstanding = EXPECTED["2026-04-15"]
    assert _figures(driver) == invoices
    assert yen(_text(driver, "#outstanding-total")) == outstanding

    # -- log out: the pages ask for a key again
    driver.find_element(By.CSS_SELECTOR, "header form[action='/ui/logout'] button").click()
    _wait(driver, lambda: "/ui/login" in driver.current_url)
    driver.get(f"{server.base}/ui/contracts/{made.contract_id}")
    _wait(driver, lambda: "/ui/login" in driver.current_url)
    assert (ARTIFACTS / "ui-contract.png").stat().st_size > 10_000
    assert (ARTIFACTS / "ui-dashboard.png").stat().st_size > 10_000
