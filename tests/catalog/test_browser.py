"""The catalog in a real browser: Debian's chromium, driven by chromium-driver (selenium),
on the generated site served by ``http.server`` on 127.0.0.1 (a random port)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from catalog.conftest import CHROMEDRIVER

from builder.catalog import build
from builder.catalog.search import search
from builder.project import Project
from builder.spec import Catalog

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "catalog.png"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(world, tmp_path):
    """(base URL, Site) of the world's catalog, served on 127.0.0.1."""
    project = Project.at(world.project)
    out = tmp_path / "site"
    started = time.monotonic()
    built = build(project, Catalog.load(project), out, world.registry)
    print(f"catalog build: {time.monotonic() - started:.2f}s")
    handler = functools.partial(_Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", built, project
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _visible_rows(driver, table_id: str, attrs=("data-name",)) -> list:
    """The rows the user sees (one script, not a round trip per row)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".filter(r => r.offsetParent !== null)"
        ".map(r => arguments[1].map(a => r.getAttribute(a)))",
        f"#{table_id} tbody tr",
        list(attrs),
    )


def _type(element, text: str) -> None:
    element.clear()
    element.send_keys(text)


@pytest.mark.registry
@pytest.mark.browser
def test_index_distribution_filter_and_yank_in_chromium(served, browser, tmp_path):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    started = time.monotonic()
    base, _, _ = served
    browser.get(base + "index.html")
    assert browser.find_element("tag name", "html").get_attribute("lang") == "en"
    assert browser.find_element("tag name", "h1").text == "Images"
    cards = [e.text for e in browser.find_elements("css selector", ".card h3 a")]
    assert set(cards) == {"base", "pangeo", "gpu-ml", "r-edu", "demo"}
    # no request leaves 127.0.0.1: every resource the page loaded is the site's own
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert urls and all(u.startswith(base) for u in urls), urls

    # open a distribution, by the link, as a user would
    browser.find_element("link text", "pangeo").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_element("tag name", "h1").text)
    assert browser.find_element("tag name", "h1").text.startswith("pangeo")

    # the filter box: typing leaves exactly the rows whose text holds it
    table = "table-linux-64"
    everything = [r[0] for r in _visible_rows(browser, table)]
    assert len(everything) > 100
    box = browser.find_element("id", "filter-linux-64")
    _type(box, "xarray")
    WebDriverWait(browser, 10).until(lambda d: len(_visible_rows(d, table)) < len(everything))
    shown = [r[0] for r in _visible_rows(browser, table)]
    assert "xarray" in shown and "cf_xarray" in shown and "rioxarray" in shown
    assert "numpy" not in shown and "dask" not in shown
    status = box.find_element("xpath", "..").find_element("class name", "filter-status").text
    assert status == f"{len(shown)} rows."
    _type(box, "zzz-no-such-package")
    WebDriverWait(browser, 10).until(lambda d: not _visible_rows(d, table))
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    WebDriverWait(browser, 10).until(lambda d: len(_visible_rows(d, table)) == len(everything))

    # the yanked release is marked, with its reason
    yanked = browser.find_element("id", "release-2025.02.03")
    assert "yanked" in yanked.get_attribute("class").split()
    assert "Yanked" in yanked.text and "dask 2099 <breaks> distributed" in yanked.text
    current = browser.find_element("id", "release-2025.03.01")
    assert "yanked" not in (current.get_attribute("class") or "")

    # the copy button appears with JavaScript, and is reachable by keyboard
    copy = browser.find_element("css selector", "button[data-copy='profile']")
    assert copy.is_displayed()
    copy.click()
    WebDriverWait(browser, 10).until(lambda d: copy.text in ("Copied", "Press Ctrl+C"))

    browser.save_screenshot(str(tmp_path / "pangeo.png"))
    browser.get(base + "index.html")
    browser.save_screenshot(str(tmp_path / "index.png"))
    assert (tmp_path / "pangeo.png").stat().st_size > 10_000
    if os.environ.get("SCISTACKS_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        browser.get(base + "d/pangeo/index.html")
        shutil.copy(_screenshot(browser, tmp_path / "readme.png"), SCREENSHOT)
    print(f"browser test: {time.monotonic() - started:.2f}s")


def _screenshot(browser, path: Path) -> Path:
    browser.set_window_size(1280, 1000)
    browser.save_screenshot(str(path))
    return path


@pytest.mark.registry
@pytest.mark.browser
def test_package_search_in_chromium_agrees_with_conda_semantics(served, browser):
    """The search box (JavaScript) finds what builder.catalog.search (rattler) finds."""
    base, _, project = served
    from builder.catalog.model import collect

    site = collect(project, Catalog.load(project), None)
    for query in ("python >=3.12", "numpy >=2,<3", "xarray 2025.*", "zarr <3", "pandas"):
        expected = {(h.distribution, h.version) for h in search(site, query)}
        browser.get(base + "search.html?q=" + query.replace(" ", "+"))
        got = set(
            map(tuple, _visible_rows(browser, "search-table", ("data-group", "data-version")))
        )
        assert got == expected, query
    # typing, as a user would: gdal is not in these images, python 3.11 neither
    box = browser.find_element("id", "package-query")
    box.clear()
    box.send_keys("python 3.11.*")
    status = browser.find_element("id", "search-status")
    assert status.text == "No match."
