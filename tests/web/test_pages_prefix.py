"""The pages behind a proxy that serves the site under a path over https: links, redirects and
cookies carry the prefix, and cookies are Secure."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.harness import ApiClient, Server
from tests.smtp_sink import SmtpSink
from tests.web.helpers import client_ip, csrf_of, form_to, link_in, mail_to, sign_up

PREFIX = "/hub"


@pytest.fixture(scope="module")
def prefixed(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, server: Server
) -> Iterator[Server]:
    """A second hub on the same database, as an https site under /hub."""
    srv = Server(tmp_path_factory.mktemp("prefixed"), database_url, None)
    srv.env["CALCHUB_URL_PREFIX"] = PREFIX
    srv.env["CALCHUB_SITE_URL"] = "https://calchub.example.org" + PREFIX
    srv.start()
    yield srv
    srv.stop()


def test_links_redirects_and_cookies_carry_the_prefix(
    prefixed: Server, api: ApiClient, admin_key: str
) -> None:
    account = sign_up(api, admin_key)
    headers = {"Accept": "text/html", "X-Forwarded-For": client_ip()}
    with httpx.Client(base_url=prefixed.url + PREFIX, headers=headers, timeout=60) as client:
        landing = client.get("/")
        assert landing.status_code == 200
        assert f'href="{PREFIX}/api/docs"' in landing.text
        assert f'href="{PREFIX}/app/sign-in"' in landing.text
        form = client.get("/app/sign-in")
        csrf_cookie = form.headers["set-cookie"]
        assert f"Path={PREFIX}" in csrf_cookie and "Secure" in csrf_cookie
        assert f'action="{PREFIX}/app/sign-in"' in form.text
        # A Secure cookie is not sent back over plain http: the test hands it over itself.
        token = csrf_of(form.text)
        signed = client.post(
            "/app/sign-in",
            data={"csrf_token": token, "email": account.email, "password": account.password},
            headers={"Cookie": f"calchub_csrf={token}"},
        )
        assert signed.status_code == 303, signed.text
        assert signed.headers["location"] == f"{PREFIX}/app/keys"
        session_cookie = signed.headers["set-cookie"]
        assert session_cookie.startswith("calchub_session=")
        assert f"Path={PREFIX}" in session_cookie and "Secure" in session_cookie
        assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
        session = session_cookie.split(";", 1)[0]
        keys = client.get("/app/keys", headers={"Cookie": session})
        assert keys.status_code == 200
        made = client.post(
            "/app/keys",
            data={"csrf_token": csrf_of(keys.text), "name": "behind a proxy"},
            headers={"Cookie": session},
        )
        assert made.status_code == 200
        assert "https://calchub.example.org/hub/api/v1/ping" in made.text
        assert f'href="{PREFIX}/app/sessions"' in made.text
        sessions = client.get("/app/sessions", headers={"Cookie": session})
        assert sessions.status_code == 200
        assert f'action="{PREFIX}/app/sessions/end-others"' not in sessions.text
        ended = form_to(sessions.text, "/end")
        assert ended.action.startswith(f"{PREFIX}/app/sessions/")
        out = client.post(
            ended.action.removeprefix(PREFIX), data=ended.fields, headers={"Cookie": session}
        )
        assert out.status_code == 303 and out.headers["location"] == f"{PREFIX}/app/sign-in"
        assert f"Path={PREFIX}" in out.headers["set-cookie"]
        assert client.get("/app/keys", headers={"Cookie": session}).status_code == 303
        signed_out_sessions = client.get("/app/sessions")
        assert signed_out_sessions.headers["location"] == (
            f"{PREFIX}/app/sign-in?next=/app/sessions"
        )
        signed_out = client.get("/app/keys")
        assert signed_out.headers["location"] == f"{PREFIX}/app/sign-in?next=/app/keys"


def test_verification_page_posts_under_the_prefix(
    prefixed: Server, api: ApiClient, admin_key: str, smtp: SmtpSink
) -> None:
    account = sign_up(api, admin_key)
    (welcome,) = mail_to(smtp, account.email)
    query = urlsplit(link_in(welcome, r"\S+/auth/verify\?\S+")).query
    headers = {"Accept": "text/html", "X-Forwarded-For": client_ip()}
    with httpx.Client(base_url=prefixed.url + PREFIX, headers=headers, timeout=60) as client:
        shown = client.get("/auth/verify?" + query)
        assert shown.status_code == 200, shown.text
        csrf_cookie = shown.headers["set-cookie"]
        assert f"Path={PREFIX}" in csrf_cookie and "Secure" in csrf_cookie
        form = form_to(shown.text, "/auth/verify")
        assert form.action == f"{PREFIX}/auth/verify"
        # A Secure cookie is not sent back over plain http: the test hands it over itself.
        done = client.post(
            "/auth/verify",
            data=form.fields,
            headers={"Cookie": f"calchub_csrf={form.fields['csrf_token']}"},
        )
        assert done.status_code == 200 and "Email address verified" in done.text
        assert f'href="{PREFIX}/app/sign-in"' in done.text
