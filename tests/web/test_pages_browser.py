"""The web pages in a real browser (Debian's chromium, driven by Selenium through
chromium-driver): sign up through the API, verify through the mailed link, sign in, make a
key and use it, revoke it, reset a forgotten password, read a support ticket, and the ways
these go wrong. Each page is photographed into tests.web.helpers.screenshot_dir()."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser import headless_chromium
from tests.harness import ApiClient, Server
from tests.smtp_sink import SmtpSink
from tests.web.helpers import (
    browser_client,
    link_in,
    mail_to,
    screenshot_dir,
    sign_up,
    verify_through,
    welcome_link,
)
from tests.web.helpers import sign_in as sign_in_over_http

pytest.importorskip("selenium")

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

PHONE = (390, 844)
DESKTOP = (1200, 900)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: WebDriver, server: Server) -> Iterator[WebDriver]:
    """The browser, signed out, at desktop size, with nothing left from the previous test."""
    browser.set_window_size(*DESKTOP)
    browser.get(server.url + "/healthz")
    browser.delete_all_cookies()
    yield browser
    browser.delete_all_cookies()


def shoot(browser: WebDriver, name: str) -> None:
    """A picture of the whole page (the window grows to the page's height first)."""
    width = browser.get_window_size()["width"]
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, max(int(height) + 120, 400))
    assert browser.save_screenshot(str(screenshot_dir() / f"{name}.png"))


def fill(browser: WebDriver, label: str, value: str) -> None:
    """Type into the field a visible label names (which also checks that the label exists)."""
    target = browser.find_element(By.XPATH, f"//label[normalize-space()='{label}']")
    field = browser.find_element(By.ID, target.get_attribute("for") or "")
    field.clear()
    field.send_keys(value)


def _gone(element: WebElement) -> bool:
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        # Chromium sometimes reports an element of the page it just left this way.
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def navigates(browser: WebDriver, act: Callable[[], object]) -> None:
    """Do what loads another page, and wait until the browser has left this one."""
    old = browser.find_element(By.TAG_NAME, "html")
    act()
    WebDriverWait(browser, 30).until(lambda _: _gone(old))


def press(browser: WebDriver, text: str) -> None:
    """Press a button that submits its form."""
    button = browser.find_element(By.XPATH, f"//button[normalize-space()='{text}']")
    navigates(browser, button.click)


def follow(browser: WebDriver, text: str) -> None:
    navigates(browser, browser.find_element(By.LINK_TEXT, text).click)


def heading(browser: WebDriver) -> str:
    return str(browser.find_element(By.TAG_NAME, "h1").text)


def alert(browser: WebDriver) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, "[role=alert]").text)


def sign_in(browser: WebDriver, server: Server, email: str, password: str) -> None:
    browser.get(server.url + "/app/sign-in")
    fill(browser, "Email address", email)
    fill(browser, "Password", password)
    press(browser, "Sign in")


def fits_the_width(browser: WebDriver) -> bool:
    return bool(
        browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1"
        )
    )


def nothing_from_elsewhere(browser: WebDriver, server: Server) -> None:
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(url.startswith(server.url + "/") for url in fetched), fetched
    # Error statuses the tests asked for are not problems of the page; scripts, styles
    # refused by the content security policy and failed loads are.
    errors = [
        e
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE"
        and "favicon.ico" not in e["message"]
        and "the server responded with a status of" not in e["message"]
    ]
    assert errors == []


def test_landing_page(page: WebDriver, server: Server) -> None:
    page.get(server.url + "/")
    assert heading(page) == "calchub"
    assert page.title == "calchub · calchub"
    follow(page, "API reference")
    assert page.current_url == server.url + "/api/docs"
    page.back()
    follow(page, "Sign in")
    assert heading(page) == "Sign in"
    # The first key press reaches the skip link, and it leads to the content.
    page.get(server.url + "/")
    ActionChains(page).send_keys(Keys.TAB).perform()
    focused = page.switch_to.active_element
    assert focused.text == "Skip to the content"
    assert focused.is_displayed()
    focused.send_keys(Keys.ENTER)
    assert page.current_url == server.url + "/#main"
    nothing_from_elsewhere(page, server)
    shoot(page, "landing")


def test_sign_up_verify_sign_in_and_manage_keys(
    page: WebDriver, server: Server, api: ApiClient, admin_key: str, smtp: SmtpSink
) -> None:
    account = sign_up(api, admin_key)
    _, link = welcome_link(server, smtp, account.email)
    page.get(server.url + link)
    assert heading(page) == "Verify your email address"
    assert account.email in page.find_element(By.TAG_NAME, "main").text
    nothing_from_elsewhere(page, server)
    page.set_window_size(*PHONE)
    assert fits_the_width(page)
    page.set_window_size(*DESKTOP)
    shoot(page, "verify")
    press(page, "Verify this address")
    assert heading(page) == "Email address verified"
    # The token is no longer in the address bar (nor in the history's newest entry).
    assert page.current_url == server.url + "/auth/verify"
    shoot(page, "verified")

    sign_in(page, server, account.email, "not the password")
    assert alert(page) == "The email address or the password is not right."
    # What was typed stays, but not the password.
    assert page.find_element(By.ID, "email").get_attribute("value") == account.email
    assert page.find_element(By.ID, "password").get_attribute("value") == ""
    shoot(page, "sign-in-refused")

    # Signing in with the keyboard alone.
    page.get(server.url + "/app/sign-in")
    shoot(page, "sign-in")
    page.find_element(By.ID, "email").send_keys(account.email, Keys.TAB, account.password)
    navigates(page, lambda: page.switch_to.active_element.send_keys(Keys.ENTER))
    assert heading(page) == "API keys"
    assert page.current_url == server.url + "/app/keys"
    assert "You have no API keys yet." in page.page_source
    shoot(page, "keys-empty")

    fill(page, "Name", "notebook runner")
    page.find_element(By.ID, "expire_days").send_keys("in 30 days")
    press(page, "Create key")
    secret = page.find_element(By.ID, "secret").get_attribute("value") or ""
    assert secret.startswith("sk-")
    curl = page.find_element(By.ID, "curl").text
    assert curl == f"curl -u '{secret}:' {server.url}/api/v1/ping"
    page.find_element(By.ID, "copy").click()
    WebDriverWait(page, 10).until(lambda d: d.find_element(By.ID, "copied").text == "Copied.")
    nothing_from_elsewhere(page, server)
    shoot(page, "key-created")

    row = page.find_element(By.CSS_SELECTOR, "tbody tr")
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "notebook runner"
    assert cells[1] == secret[:3] + "..." + secret[-6:]
    assert cells[3] == "never" and cells[4].endswith("UTC") and cells[5] == "whole account"
    assert api.call("ping", secret).event == "pong"

    # Shown once: the page, loaded again, lists the key but no longer holds it.
    page.get(server.url + "/app/keys")
    assert secret not in page.page_source
    assert page.find_elements(By.ID, "secret") == []
    last_used = page.find_element(By.CSS_SELECTOR, "tbody tr td:nth-child(4)").text
    assert last_used.endswith("UTC")

    # On a phone the page fits the screen (the table scrolls inside its box).
    page.set_window_size(*PHONE)
    assert fits_the_width(page)
    shoot(page, "keys-phone")
    page.set_window_size(*DESKTOP)

    press(page, "Revoke")
    assert page.find_element(By.CSS_SELECTOR, "[role=status]").text == "The key is revoked."
    assert "You have no API keys yet." in page.page_source
    refused = api.call("ping", secret)
    assert refused.status == 400
    assert refused["error"] == "No account found. Is your API key wrong?"
    shoot(page, "key-revoked")

    press(page, "Sign out")
    assert heading(page) == "calchub"
    page.get(server.url + "/app/keys")
    assert heading(page) == "Sign in"


def test_sign_a_lost_laptop_out_from_the_sessions_page(
    page: WebDriver, server: Server, api: ApiClient, admin_key: str
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server, "10.251.0.7") as laptop:
        sign_in_over_http(laptop, account.email, account.password)
        assert laptop.get("/app/keys").status_code == 200
        sign_in(page, server, account.email, account.password)
        follow(page, "Sessions")
        assert heading(page) == "Where you are signed in"
        assert page.current_url == server.url + "/app/sessions"
        rows = page.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 2
        # Newest first: this browser signed in last.
        assert "This browser" in rows[0].text and "This browser" not in rows[1].text
        assert "10.251.0.7" in rows[1].text
        nothing_from_elsewhere(page, server)
        page.set_window_size(*PHONE)
        assert fits_the_width(page)
        shoot(page, "sessions-phone")
        page.set_window_size(*DESKTOP)
        shoot(page, "sessions")

        other = rows[1].find_element(By.TAG_NAME, "button")
        assert other.text == "Sign out"
        navigates(page, other.click)
        assert page.find_element(By.CSS_SELECTOR, "[role=status]").text == (
            "That browser is signed out."
        )
        rows = page.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 1 and "This browser" in rows[0].text
        assert "10.251.0.7" not in page.page_source
        shoot(page, "sessions-ended")
        # The laptop's cookie signs nobody in any more; this browser is still signed in.
        assert laptop.get("/app/keys").status_code == 303
        page.get(server.url + "/app/keys")
        assert heading(page) == "API keys"


def test_reset_a_forgotten_password_through_the_mailed_link(
    page: WebDriver, server: Server, api: ApiClient, admin_key: str, smtp: SmtpSink
) -> None:
    account = sign_up(api, admin_key)
    page.get(server.url + "/app/sign-in")
    follow(page, "Forgot your password?")
    shoot(page, "forgot")
    fill(page, "Email address", account.email)
    press(page, "Send the link")
    assert heading(page) == "Check your email"
    mail = mail_to(smtp, account.email, count=2)[-1]
    link = link_in(mail, re.escape(server.url) + r"/app\?forgot=\S+")

    page.get(link)
    assert heading(page) == "Set a new password"
    shoot(page, "reset")
    fill(page, "New password", "short")
    press(page, "Set the new password")
    assert "between 6 and 64" in alert(page)
    fill(page, "New password", "a brand new password")
    press(page, "Set the new password")
    assert heading(page) == "Your password is changed"
    shoot(page, "reset-done")

    # The link worked once.
    page.get(link)
    fill(page, "New password", "yet another password")
    press(page, "Set the new password")
    assert heading(page) == "This link has expired"
    shoot(page, "reset-used")

    sign_in(page, server, account.email, account.password)
    assert alert(page) == "The email address or the password is not right."
    sign_in(page, server, account.email, "a brand new password")
    assert heading(page) == "API keys"


def test_support_ticket_page(
    page: WebDriver, server: Server, api: ApiClient, make_user: Any
) -> None:
    user = make_user()
    body = {"email_address": user.email, "subject": "My kernel died", "body": "Line one\nTwo"}
    reply = api.call("create_support_ticket", user.api_key, body)
    assert reply.event == "support_ticket_url", reply.body
    url = reply["url"]

    # Signed out, the address leads through the sign-in, and back.
    page.get(url)
    assert heading(page) == "Sign in"
    fill(page, "Email address", user.email)
    fill(page, "Password", user.password)
    press(page, "Sign in")
    assert page.current_url == url
    number = url.rsplit("/", 1)[1]
    assert heading(page) == f"Support ticket #{number}"
    assert "My kernel died" in page.page_source
    assert page.find_element(By.CSS_SELECTOR, ".body").text == "Line one\nTwo"
    shoot(page, "ticket")
    page.get(server.url + "/support/tickets/999999999")
    assert heading(page) == "No such support ticket"
    shoot(page, "ticket-missing")


def test_a_form_without_its_csrf_token_is_refused(
    page: WebDriver, server: Server, api: ApiClient, admin_key: str
) -> None:
    account = sign_up(api, admin_key)
    sign_in(page, server, account.email, account.password)
    assert heading(page) == "API keys"
    page.execute_script(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())"
    )
    fill(page, "Name", "forged")
    press(page, "Create key")
    assert heading(page) == "Please try again"
    shoot(page, "csrf-refused")
    page.get(server.url + "/app/keys")
    assert "forged" not in page.page_source


def test_wrong_or_used_verification_links(
    page: WebDriver, server: Server, api: ApiClient, admin_key: str, smtp: SmtpSink
) -> None:
    page.get(server.url + "/auth/verify?email=someone%40example.com&token=wrong")
    assert heading(page) == "This link does not work"
    shoot(page, "verify-refused")
    # Used elsewhere while this page was open: the button says so.
    account = sign_up(api, admin_key)
    _, path = welcome_link(server, smtp, account.email)
    link = server.url + path
    page.get(link)
    assert heading(page) == "Verify your email address"
    assert verify_through(link).status_code == 200
    press(page, "Verify this address")
    assert heading(page) == "This link does not work"
    page.get(link)
    assert heading(page) == "This link does not work"
