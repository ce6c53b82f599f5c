"""The served OpenAPI documents and the reference page, the page rendered in a real headless
Chromium (Debian's `chromium` and `chromium-driver`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openapi_spec_validator import validate

from calchub.api.v1 import handlers  # noqa: F401  (defines the events)
from calchub.api.v1.registry import DEFINITIONS
from tests.browser import headless_chromium
from tests.harness import ApiClient, Server


def test_openapi_documents_are_served(api: ApiClient) -> None:
    whole = api.http.get("/api/openapi.json")
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "application/json"
    doc = whole.json()
    validate(doc)
    assert doc["servers"] == [{"url": "/"}]
    v1 = api.http.get("/api/v1/openapi.json").json()
    validate(v1)
    assert set(v1["paths"]) == {f"/api/v1/{event}" for event in DEFINITIONS}
    assert set(v1["paths"]) <= set(doc["paths"])
    for edge in ("conat", "v2"):
        part = api.http.get(f"/api/{edge}/openapi.json").json()
        validate(part)
        assert part["paths"] and all(p.startswith(f"/api/{edge}/") for p in part["paths"])
        assert set(part["paths"]) <= set(doc["paths"])
    # Served without a key; a POST there is an unknown v1 event like any other.
    assert api.http.post("/api/v1/openapi.json").status_code == 400


def test_index_and_api_root_lead_to_the_reference(api: ApiClient) -> None:
    assert api.http.get("/").json()["reference"] == "/api/docs"
    for path in ("/api", "/api/"):
        response = api.http.get(path, follow_redirects=False)
        assert response.status_code == 307, path
        assert response.headers["location"].endswith("/api/docs")
    page = api.http.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h1>calchub API</h1>" in page.text


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium() as driver:
        yield driver


def test_reference_page_renders_in_chromium(server: Server, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    browser.get(f"{server.url}/api/")  # redirected to the page
    assert browser.current_url == f"{server.url}/api/docs"
    assert browser.title == "calchub API reference"
    links = browser.find_elements(By.CSS_SELECTOR, "nav a")
    assert len(links) >= len(DEFINITIONS)
    # Following a link shows that operation's section, laid out with its field table.
    browser.find_element(By.CSS_SELECTOR, "nav a[href='#v1_project_exec']").click()
    section = browser.find_element(By.ID, "v1_project_exec")
    assert section.is_displayed()
    assert "POST/api/v1/project_exec" in section.find_element(By.TAG_NAME, "h3").text.replace(
        " ", ""
    )
    cells = [c.text for c in section.find_elements(By.CSS_SELECTOR, "td code")]
    assert {"project_id", "command", "timeout", "stdout", "exit_code"} <= set(cells)
    nav_width = browser.execute_script("return document.querySelector('nav').offsetWidth")
    assert nav_width > 100  # the style sheet applied
    # Nothing was fetched from another host (the browser may ask this one for an icon), and
    # nothing went wrong in the page.
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(url.startswith(server.url + "/") for url in fetched), fetched
    errors = [
        e
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]
    ]
    assert errors == []
