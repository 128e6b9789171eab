"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven through Selenium.

The browser is the system's: nothing is downloaded at run time (README command 2, which ``.ci/run`` runs, installs
the two packages). Without them the tests fail and say what to install; they never skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

MISSING = ("Debian's chromium and chromium-driver are needed for the browser tests: "
           "sudo apt-get install -y chromium chromium-driver (README command 2 installs them)")


def chromium_binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(f"{MISSING}; found chromium={browser}, chromedriver={driver}")
    return browser, driver


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (selenium WebDriver), 1400x1000, shared by the session's browser tests: each loads
    its own page (a report file, or a server on a port of its own, so no origin's storage is shared)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = chromium_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield session
    finally:
        session.quit()


def open_report(browser, html_path) -> list[str]:
    """Load a search report's HTML in ``browser``, wait until every image has decoded, and return the ids of its
    sections in page order."""
    from tests.fixtures_processes import wait_until

    browser.get(html_path.as_uri())
    wait_until(lambda: browser.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"),
        timeout_s=30, what="every report image decoded")
    return browser.execute_script("return Array.from(document.querySelectorAll('section')).map(s => s.id)")
