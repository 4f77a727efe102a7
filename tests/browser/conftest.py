"""A real headless Chromium (Debian's package) driven through its chromedriver by Selenium.

Without Chromium the browser tests skip and say why; under ``CI=true`` they fail instead,
because CI installs Chromium itself and a skip there would hide a broken page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from suprsend_async.emulator import Emulator

CHROMIUM = os.environ.get("SUPRSEND_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SUPRSEND_CHROMEDRIVER", "/usr/bin/chromedriver")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[tests]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) or shutil.which(path)):
            return f"{path} not found (apt-get install -y chromium chromium-driver)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium that logs every network request its pages make."""
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {missing}")
        pytest.skip(f"BROWSER TESTS SKIPPED: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-extensions",
        "--window-size=1400,1000",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def inbox_emulator() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def page(browser: Any, inbox_emulator: Emulator) -> Any:
    """The inbox page of an emptied emulator, loaded and connected to its live stream."""
    from selenium.webdriver.support.ui import WebDriverWait

    inbox_emulator.reset()
    inbox_emulator.set_faults()
    browser.get_log("performance")  # forget requests made by earlier tests
    browser.get(inbox_emulator.inbox_url)
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element("id", "live").text == "live",
        "the page did not connect to the live stream",
    )
    return browser
