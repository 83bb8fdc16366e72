"""Every HTTP app's GET /docs in a real browser: headless Chromium (Debian's `chromium`
and `chromium-driver`, installed by `make install`) driven by selenium, against the six
ports of the services started as real processes on free ports.

For each page: the operations render (waited for, with a deadline), every route of the
app's own /openapi.json is listed (method and path), one GET is run from the page
("Try it out", "Execute") against the live service, its status and body read back from
the page, and everything the page loaded came from the app itself (no CDN). The grades
setter's page loads without credentials, and trying POST /set from it is refused (401)
until the Authorize dialog is given the Basic credentials.

A screenshot of each page is written to the module's temporary directory; set
DOCS_SCREENSHOTS=<dir> to keep them (docs/balances-docs.png is one).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from actors.accrual.testing import Accrual
from actors.balances.testing import Balances
from actors.gophermart.testing import Gophermart
from actors.grades.testing import AUTH, Cluster
from actors.runtime.pg.server import PostgresServer
from actors.runtime.testing import HttpService
from actors.segments.testing import Segments

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no headless browser: `make install` installs Debian's chromium and "
    "chromium-driver (scripts/install-chromium.sh)",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra)")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # NOTE: without these Chromium reaches for the internet at start and, on a machine
    # with loopback only, hangs until its own timeouts.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1700",
]
RENDER_TIMEOUT_S = 30.0
"""Loading a page: the ~1 MB bundle, the document, the first render."""
EXECUTE_TIMEOUT_S = 15.0
"""A "Try it out" request to a live service and its response rendered."""
START_TIMEOUT_S = 60.0
"""The four services and a grades replica starting at once on a shared machine."""
BALANCES_USER = "docs-page-user"
SEGMENT = "DOCS_PAGE_SEGMENT"
SETTER_USER = "docs-page-setter"


@dataclass(frozen=True)
class Page:
    """One app's docs page and the GET to run from it: the operation and a text its
    response body must show."""

    base: str
    operation_id: str
    shows: str


@pytest.fixture(scope="module")
def pages(
    pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Page]]:
    """The services as real processes (each on its own database), with one row each for
    the pages' GETs to show; stopped at the end, each exiting cleanly."""
    directory = tmp_path_factory.mktemp("docs-browser")
    group = Cluster(directory, workers=1)
    dsn = {name: pg_server.create_database(f"docs_{name}") for name in ("a", "g", "s", "b")}
    try:
        accrual = group.add(Accrual(dsn["a"], group.log_dir))
        services: list[HttpService] = [
            accrual,
            group.add(Gophermart(dsn["g"], accrual.base, group.log_dir)),
            group.add(Segments(dsn["s"], group.log_dir)),
            group.add(Balances(dsn["b"], group.log_dir, workers=1)),
        ]
        for service in services:
            service.start()
        replica = group.replica(1, group.bus(), wait=False)
        for service in services:
            service.wait_ready(START_TIMEOUT_S)
        replica.wait_ready(START_TIMEOUT_S)
        accrual_, gophermart, segments, balances = services
        assert balances.post("/api/v1/user/", {"username": BALANCES_USER, "balance": 7}).ok
        assert segments.post("/api/segments", {"slug": SEGMENT}).ok
        yield {
            "grades setter": Page(replica.set_base, "openapi", '"title": "grades setter"'),
            "grades getter": Page(replica.get_base, "readyz", '"phase": "ready"'),
            "gophermart": Page(gophermart.base, "ready", '"ready": true'),
            "accrual": Page(accrual_.base, "ready", '"ready": true'),
            "segments": Page(segments.base, "listSegments", SEGMENT),
            "balances": Page(balances.base, "listUsers", BALANCES_USER),
        }
    finally:
        problems = group.stop_all()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for every page, on a fresh profile."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.enable_bidi = True  # for network.add_authentication_handler
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(RENDER_TIMEOUT_S)
    # NOTE: a 401 with a Basic challenge makes Chromium ask for a login in its own dialog
    # (headless: the request waits for it); cancel it as a person would, so the page gets
    # and shows the 401.
    driver.network.add_authentication_handler(lambda challenge: challenge.cancel())
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("DOCS_SCREENSHOTS")
    return Path(kept) if kept else tmp_path_factory.mktemp("docs-screenshots")


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout_s: float) -> Any:
    """``condition``'s first truthy value, or a failure naming what the page showed."""
    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(condition)
    except WebDriverException as exc:
        live = driver.find_elements(By.CSS_SELECTOR, ".live-responses-table")
        text = (live[0] if live else driver.find_element(By.TAG_NAME, "body")).text[:2000]
        raise AssertionError(f"{driver.current_url}: {exc.msg}; the page shows:\n{text}") from exc


def operations_of(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}


def listed_operations(driver: WebDriver) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation the page renders."""
    listed = set()
    for block in driver.find_elements(By.CSS_SELECTOR, ".opblock .opblock-summary"):
        method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
        path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path")
        listed.add((method.upper(), path.get_attribute("data-path") or path.text))
    return listed


def open_page(driver: WebDriver, base: str) -> set[tuple[str, str]]:
    """Load base/docs and wait until every operation of base/openapi.json is rendered;
    the operations of the document."""
    document = requests.get(f"{base}/openapi.json", timeout=10).json()
    expected = operations_of(document)
    driver.get(f"{base}/docs")
    wait_for(
        driver,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(expected),
        RENDER_TIMEOUT_S,
    )
    return expected


def execute(driver: WebDriver, operation_id: str, status: str = "200") -> str:
    """Expand the operation, "Try it out" (unless on), "Execute"; the response body the
    page shows, once it shows ``status``."""
    block = driver.find_element(By.ID, f"operations-default-{operation_id}")
    if "is-open" not in (block.get_attribute("class") or ""):
        block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    if not block.find_elements(By.CSS_SELECTOR, ".execute"):
        wait_for(driver, lambda d: block.find_element(By.CSS_SELECTOR, ".try-out__btn"), 10).click()
    wait_for(driver, lambda d: block.find_element(By.CSS_SELECTOR, ".execute"), 10).click()

    def shown(_: WebDriver) -> str | None:
        for row in block.find_elements(By.CSS_SELECTOR, ".live-responses-table .response"):
            if row.find_element(By.CSS_SELECTOR, ".response-col_status").text.strip() == status:
                bodies = row.find_elements(By.CSS_SELECTOR, ".response-col_description pre")
                return bodies[0].text if bodies else ""
        return None

    body: str = wait_for(driver, shown, EXECUTE_TIMEOUT_S)
    return body


def authorize(driver: WebDriver, user: str, password: str) -> None:
    """The page's Authorize dialog, given HTTP Basic credentials."""
    driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    dialog = wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, ".modal-ux"), 10)
    dialog.find_element(By.CSS_SELECTOR, "input[type=text]").send_keys(user)
    dialog.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password)
    dialog.find_element(By.CSS_SELECTOR, "button.modal-btn.authorize").click()
    wait_for(
        driver,
        lambda d: "Logout" in [b.text for b in dialog.find_elements(By.TAG_NAME, "button")],
        10,
    )
    dialog.find_element(By.CSS_SELECTOR, "button.btn-done").click()
    wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".modal-ux"), 10)


SERVICES = ["grades setter", "grades getter", "gophermart", "accrual", "segments", "balances"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_docs_page_lists_every_route_and_runs_a_get(
    pages: dict[str, Page], browser: WebDriver, screenshots: Path, service: str
) -> None:
    page = pages[service]
    expected = open_page(browser, page.base)
    assert listed_operations(browser) == expected
    assert page.shows in execute(browser, page.operation_id)
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert {f"{page.base}/docs/swagger-ui-bundle.js", f"{page.base}/openapi.json"} <= set(loaded)
    assert [url for url in loaded if not url.startswith(page.base + "/")] == []  # no CDN
    browser.save_screenshot(str(screenshots / f"{service.replace(' ', '-')}-docs.png"))


def test_trying_set_from_the_setter_page_needs_the_credentials(
    pages: dict[str, Page], browser: WebDriver
) -> None:
    """The page loads without credentials and marks POST /set as needing them; trying it
    is 401 (nothing written) until Authorize is given them, then 200 and the record is
    there on the getter."""
    open_page(browser, pages["grades setter"].base)
    block = browser.find_element(By.ID, "operations-default-set")
    lock = block.find_element(By.CSS_SELECTOR, ".authorization__btn")
    assert "unlocked" in (lock.get_attribute("class") or "").split()
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_for(browser, lambda d: block.find_element(By.CSS_SELECTOR, ".try-out__btn"), 10).click()
    body = wait_for(browser, lambda d: block.find_element(By.CSS_SELECTOR, "textarea"), 10)
    body.clear()
    body.send_keys(json.dumps({"user_id": SETTER_USER, "spp": 17}))
    assert "credentials" in execute(browser, "set", "401")
    getter = pages["grades getter"].base
    assert (
        requests.get(f"{getter}/get", params={"user_id": SETTER_USER}, timeout=10).status_code
        == 404
    )

    authorize(browser, *AUTH)
    assert "locked" in (lock.get_attribute("class") or "").split()
    assert SETTER_USER in execute(browser, "set", "200")
    record = requests.get(f"{getter}/get", params={"user_id": SETTER_USER}, timeout=10)
    assert record.status_code == 200 and record.json()["result"]["spp"] == 17, record.text


def test_every_http_app_is_checked() -> None:
    """Six ports serve HTTP (grades two); a seventh joins SERVICES and ``pages``."""
    assert len(SERVICES) == len(set(SERVICES)) == 6
