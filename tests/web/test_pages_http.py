"""The web pages over HTTP: sessions and their cookies, CSRF tokens, sign-in limits, reset
codes, and the answers programs still get at `/` and at a ticket's address."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update

from calchub.accounts.creation import VERIFY_LIFETIME
from calchub.db.tables import accounts, password_reset, sign_in_failures, web_sessions
from calchub.db.types import utcnow
from tests.harness import ApiClient, Database, Server
from tests.smtp_sink import SmtpSink
from tests.web.helpers import (
    PASSWORD,
    browser_client,
    client_ip,
    csrf_of,
    form_to,
    link_in,
    mail_to,
    set_challenge_time,
    sign_in,
    sign_up,
    welcome_link,
)


def _cookie_header(response: object, name: str) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    (found,) = [h for h in headers if h.startswith(name + "=")]
    return str(found)


def test_index_answers_programs_in_json_and_browsers_in_html(server: Server) -> None:
    with browser_client(server) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'href="/api/docs"' in page.text and 'href="/app/sign-in"' in page.text
        assert "script-src 'nonce-" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        data = client.get("/", headers={"Accept": "application/json"})
        assert data.json()["reference"] == "/api/docs"


def test_session_cookie_flags_and_storage(
    server: Server, api: ApiClient, admin_key: str, db: Database
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client:
        form = client.get("/app/sign-in")
        csrf_cookie = _cookie_header(form, "calchub_csrf")
        assert "HttpOnly" in csrf_cookie and "SameSite=strict" in csrf_cookie
        assert "Path=/" in csrf_cookie and "Secure" not in csrf_cookie  # http:// site
        signed = sign_in(client, account.email, account.password)
        assert signed.status_code == 303 and signed.headers["location"] == "/app/keys"
        cookie = _cookie_header(signed, "calchub_session")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Max-Age=604800" in cookie and "Secure" not in cookie
        token = client.cookies["calchub_session"]
        rows = db.execute(
            select(web_sessions).where(web_sessions.c.account_id == account.account_id)
        )
        (row,) = rows
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in str(tuple(row))
        assert timedelta(days=6) < row.expire - utcnow() <= timedelta(days=7)
        assert client.get("/app/keys").status_code == 200


def test_sign_out_ends_the_session_on_the_server(
    server: Server, api: ApiClient, admin_key: str
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client:
        sign_in(client, account.email, account.password)
        token = client.cookies["calchub_session"]
        keys = client.get("/app/keys")
        out = client.post("/app/sign-out", data={"csrf_token": csrf_of(keys.text)})
        assert out.status_code == 303 and out.headers["location"] == "/"
        assert "calchub_session" not in client.cookies
    # The old cookie, replayed, no longer signs anyone in.
    with browser_client(server) as replay:
        replay.cookies.set("calchub_session", token)
        again = replay.get("/app/keys")
        assert again.status_code == 303
        assert again.headers["location"] == "/app/sign-in?next=/app/keys"


def test_expired_sessions_and_password_resets_end_sessions(
    server: Server, api: ApiClient, admin_key: str, db: Database, smtp: SmtpSink
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as first, browser_client(server) as second:
        sign_in(first, account.email, account.password)
        sign_in(second, account.email, account.password)
        digest = hashlib.sha256(first.cookies["calchub_session"].encode()).hexdigest()
        db.execute(
            update(web_sessions)
            .where(web_sessions.c.token_hash == digest)
            .values(expire=utcnow() - timedelta(seconds=1))
        )
        assert first.get("/app/keys").status_code == 303
        assert second.get("/app/keys").status_code == 200
        # A forgotten password reset through the API signs every browser out.
        reply = api.call(
            "forgot_password",
            admin_key,
            {"email_address": account.email},
            headers={"X-Forwarded-For": client_ip()},
        )
        assert reply["error"] is False, reply.body
        mail = mail_to(smtp, account.email, count=2)[-1]
        code = link_in(mail, r"forgot=\S+").split("=", 1)[1]
        reply = api.call(
            "reset_forgot_password", admin_key, {"reset_code": code, "new_password": "another one"}
        )
        assert reply["error"] is False, reply.body
        assert second.get("/app/keys").status_code == 303


def test_forms_need_their_csrf_token(server: Server, api: ApiClient, admin_key: str) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client:
        client.get("/app/sign-in")
        body = {"email": account.email, "password": account.password}
        missing = client.post("/app/sign-in", data=body)
        assert missing.status_code == 403 and "not sent from this site" in missing.text
        wrong = client.post("/app/sign-in", data={**body, "csrf_token": "x" * 32})
        assert wrong.status_code == 403
        assert "calchub_session" not in client.cookies
        assert sign_in(client, account.email, account.password).status_code == 303
        page = client.get("/app/keys")
        token = csrf_of(page.text)
        # The signed-out token is no good once signed in, nor is another session's.
        altered = token[:-1] + ("1" if token.endswith("0") else "0")
        for sent in ("", client.cookies["calchub_csrf"], altered):
            refused = client.post("/app/keys", data={"csrf_token": sent, "name": "x"})
            assert refused.status_code == 403, sent
        with browser_client(server) as other:
            sign_in(other, account.email, account.password)
            foreign = csrf_of(other.get("/app/keys").text)
        assert foreign != token
        assert client.post("/app/keys", data={"csrf_token": foreign}).status_code == 403
        assert client.post("/app/sign-out", data={}).status_code == 403
        made = client.post("/app/keys", data={"csrf_token": token, "name": "ok"})
        assert made.status_code == 200 and "Your new key" in made.text
        # Forms from other sites: the browser sends no cookie along, nor a token.
        with browser_client(server) as stranger:
            assert stranger.post("/app/keys", data={"name": "x"}).status_code == 303


def test_sign_in_limits_per_address(server: Server, api: ApiClient, admin_key: str) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client:
        for _ in range(5):
            wrong = sign_in(client, account.email, "wrong password")
            assert wrong.status_code == 401
            assert "The email address or the password is not right." in wrong.text
        # Even the right password waits now, from any address.
        with browser_client(server) as elsewhere:
            limited = sign_in(elsewhere, account.email, account.password)
        assert limited.status_code == 429
        assert "Too many attempts per minute to sign in as" in limited.text
        assert "calchub_session" not in client.cookies


def test_sign_in_limits_per_client_address(server: Server, api: ApiClient, admin_key: str) -> None:
    account = sign_up(api, admin_key)
    ip = client_ip()
    with browser_client(server, ip) as client:
        for n in range(30):
            assert sign_in(client, f"nobody-{n}@example.com", "guess").status_code == 401
        limited = sign_in(client, account.email, account.password)
        assert limited.status_code == 429
        assert "Too many attempts per minute to sign in from your computer" in limited.text
    with browser_client(server) as other:
        assert sign_in(other, account.email, account.password).status_code == 303


def test_one_wrong_password_does_not_lock_out(
    server: Server, api: ApiClient, admin_key: str
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client:
        assert sign_in(client, account.email, "wrong password").status_code == 401
        assert sign_in(client, account.email, account.password).status_code == 303


def test_sign_in_bad_input(server: Server, api: ApiClient, admin_key: str) -> None:
    with browser_client(server) as client:
        assert sign_in(client, "not an address", "x").status_code == 400
        assert sign_in(client, "a@b.c", "").status_code == 401
        assert sign_in(client, "a@b.c", "x" * 5000).status_code == 401
        token = csrf_of(client.get("/app/sign-in").text)
        huge = client.post("/app/sign-in", data={"csrf_token": token, "email": "x" * 20000})
        assert huge.status_code == 413
        # Only paths of this site are followed after signing in.
        account = sign_up(api, admin_key)
        for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
            page = client.get("/app/sign-in", params={"next": target})
            assert 'value="/app/keys"' in page.text
        response = client.post(
            "/app/sign-in",
            data={
                "csrf_token": token,
                "email": account.email,
                "password": account.password,
                "next": "//evil.example/",
            },
        )
        assert response.headers["location"] == "/app/keys"


def test_reset_codes_are_single_use_and_expire(
    server: Server, api: ApiClient, admin_key: str, smtp: SmtpSink, db: Database
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client:
        for _ in range(2):
            assert (
                api.call(
                    "forgot_password",
                    admin_key,
                    {"email_address": account.email},
                    headers={"X-Forwarded-For": client_ip()},
                )["error"]
                is False
            )
        first, second = mail_to(smtp, account.email, count=3)[1:]
        links = [link_in(m, re.escape(server.url) + r"/app\?forgot=\S+") for m in (first, second)]
        page = client.get(links[0].removeprefix(server.url))
        assert page.status_code == 200 and "Set a new password" in page.text
        token = csrf_of(page.text)
        code = links[0].rsplit("=", 1)[1]
        short = client.post(
            "/app/reset-password",
            data={"csrf_token": token, "code": code, "new_password": "x"},
        )
        assert short.status_code == 400 and "between 6 and 64" in short.text
        done = client.post(
            "/app/reset-password",
            data={"csrf_token": token, "code": code, "new_password": "new password 1"},
        )
        assert done.status_code == 200 and "Your password is changed" in done.text
        again = client.post(
            "/app/reset-password",
            data={"csrf_token": token, "code": code, "new_password": "new password 2"},
        )
        assert again.status_code == 400 and "no longer valid" in again.text
        # The other code, past its day.
        other = links[1].rsplit("=", 1)[1]
        digest = hashlib.sha256(other.encode()).hexdigest()
        db.execute(
            update(password_reset)
            .where(password_reset.c.code_hash == digest)
            .values(expire=utcnow() - timedelta(seconds=1))
        )
        expired = client.post(
            "/app/reset-password",
            data={"csrf_token": token, "code": other, "new_password": "new password 3"},
        )
        assert expired.status_code == 400 and "no longer valid" in expired.text
        assert sign_in(client, account.email, "new password 1").status_code == 303


def _verified(db: Database, account_id: str) -> dict[str, str]:
    (row,) = db.execute(
        select(accounts.c.email_address_verified).where(accounts.c.account_id == account_id)
    )
    return dict(row.email_address_verified or {})


def test_verification_link_asks_and_its_button_verifies(
    server: Server, api: ApiClient, admin_key: str, smtp: SmtpSink, db: Database
) -> None:
    account = sign_up(api, admin_key)
    _, link = welcome_link(server, smtp, account.email)
    token = parse_qs(urlsplit(link).query)["token"][0]
    with browser_client(server) as client:
        # Opening the link (as often as a mail gateway likes) only asks.
        for _ in range(2):
            shown = client.get(link)
            assert shown.status_code == 200 and "Verify your email address" in shown.text
        assert client.head(link).status_code == 200
        assert _verified(db, account.account_id) == {}
        assert f">{account.email}</strong>" in shown.text
        assert shown.headers["cache-control"] == "no-store"
        assert shown.headers["referrer-policy"] == "no-referrer"
        # The form posts to the bare address: the token travels in the body, in no other URL.
        form = form_to(shown.text, "/auth/verify")
        assert form.action == "/auth/verify"
        assert form.fields == {
            "csrf_token": client.cookies["calchub_csrf"],
            "email": account.email,
            "token": token,
        }
        assert shown.text.count(token) == 1

        done = client.post("/auth/verify", data=form.fields)
        assert done.status_code == 200 and "Email address verified" in done.text
        assert account.email in done.text and token not in done.text
        assert 'href="/app/sign-in"' in done.text
        assert set(_verified(db, account.account_id)) == {account.email}
        # Used: neither the link nor the form works again.
        again = client.post("/auth/verify", data=form.fields)
        assert again.status_code == 400 and "This link does not work" in again.text
        assert "not valid" in client.get(link).text


def test_verification_form_needs_its_csrf_token_and_the_right_token(
    server: Server, api: ApiClient, admin_key: str, smtp: SmtpSink, db: Database
) -> None:
    account = sign_up(api, admin_key)
    _, link = welcome_link(server, smtp, account.email)
    with browser_client(server) as client:
        fields = form_to(client.get(link).text, "/auth/verify").fields
        for sent in ("", "x" * 32):
            refused = client.post("/auth/verify", data={**fields, "csrf_token": sent})
            assert refused.status_code == 403 and "not sent from this site" in refused.text
        # Another site's form: the browser sends the CSRF cookie along with none of it.
        with browser_client(server) as stranger:
            assert stranger.post("/auth/verify", data=fields).status_code == 403
        assert _verified(db, account.account_id) == {}
        # A wrong token, or the token for another address: the same refusal, and the right
        # token still works afterwards.
        for wrong in (
            {"token": fields["token"][:-1] + ("a" if fields["token"][-1] != "a" else "b")},
            {"token": ""},
            {"email": "someone-else@example.com"},
            {"email": ""},
        ):
            bad = client.post("/auth/verify", data={**fields, **wrong})
            assert bad.status_code == 400 and "This link does not work" in bad.text, wrong
        assert _verified(db, account.account_id) == {}
        # Signed in (here as the account itself), the form carries the session's token.
        assert sign_in(client, account.email, account.password).status_code == 303
        signed_in = form_to(client.get(link).text, "/auth/verify").fields
        assert signed_in["csrf_token"] != fields["csrf_token"]
        assert client.post("/auth/verify", data=fields).status_code == 403
        done = client.post("/auth/verify", data=signed_in)
        assert done.status_code == 200 and "Email address verified" in done.text
        assert 'href="/app/sign-in"' not in done.text
    assert set(_verified(db, account.account_id)) == {account.email}


def test_verification_refuses_oversized_and_odd_input(
    server: Server, api: ApiClient, admin_key: str, smtp: SmtpSink, db: Database
) -> None:
    account = sign_up(api, admin_key)
    _, link = welcome_link(server, smtp, account.email)
    token = parse_qs(urlsplit(link).query)["token"][0]
    with browser_client(server) as client:
        fields = form_to(client.get(link).text, "/auth/verify").fields
        odd = [
            {"email": "a" * 300 + "@example.com"},
            {"token": token + "x" * 200},
            {"email": "a\x00b@example.com"},
            {},
            {"email": account.email},
            {"token": token},
        ]
        for query in odd:
            opened = client.get("/auth/verify", params=query)
            assert opened.status_code == 400 and "This link does not work" in opened.text, query
        for change in odd[:3]:
            posted = client.post("/auth/verify", data={**fields, **change})
            assert posted.status_code == 400 and "This link does not work" in posted.text
        huge = client.post("/auth/verify", data={**fields, "email": "x" * 20000})
        assert huge.status_code == 413
        assert _verified(db, account.account_id) == {}
        assert client.post("/auth/verify", data=fields).status_code == 200


def test_verification_links_expire(
    server: Server, api: ApiClient, admin_key: str, smtp: SmtpSink, db: Database
) -> None:
    account = sign_up(api, admin_key)
    welcome, link = welcome_link(server, smtp, account.email)
    assert "valid for 24 hours" in str(welcome.message.get_body(("plain",)).get_content())
    now = utcnow()
    with browser_client(server) as client:
        fields = form_to(client.get(link).text, "/auth/verify").fields
        # Past its day, or of no readable age (an old row, a time it cannot parse, one far
        # ahead): the same refusal on opening and on pressing, and nothing verified.
        for time_ in (
            (now - VERIFY_LIFETIME - timedelta(seconds=1)).isoformat(),
            (now - timedelta(days=90)).isoformat(),
            None,
            "yesterday",
            1700000000000,
            (now + VERIFY_LIFETIME + timedelta(minutes=1)).isoformat(),
        ):
            set_challenge_time(db, account.account_id, time_)
            opened = client.get(link)
            assert opened.status_code == 400 and "This link does not work" in opened.text, time_
            assert "accounts/send-verification-email" in opened.text
            pressed = client.post("/auth/verify", data=fields)
            assert pressed.status_code == 400 and "This link does not work" in pressed.text
            assert _verified(db, account.account_id) == {}
        # Within its day (a time without an offset is UTC), the same link still works.
        almost = (now - VERIFY_LIFETIME + timedelta(minutes=5)).replace(tzinfo=None)
        set_challenge_time(db, account.account_id, almost.isoformat())
        assert client.get(link).status_code == 200
        done = client.post("/auth/verify", data=fields)
        assert done.status_code == 200 and "Email address verified" in done.text
    assert set(_verified(db, account.account_id)) == {account.email}


def test_ticket_address_answers_keys_in_json_and_sessions_in_html(
    server: Server, api: ApiClient, admin_key: str, make_user: object
) -> None:
    user = make_user()  # type: ignore[operator]
    stranger = make_user()  # type: ignore[operator]
    ticket = {
        "email_address": user.email,
        "subject": "Kernel died <b>",
        "body": "It & stopped",
    }
    url = api.call("create_support_ticket", user.api_key, ticket)["url"]
    path = url.removeprefix(server.url)
    keyed = api.http.get(path, headers={"Authorization": f"Bearer {user.api_key}"})
    assert keyed.json()["ticket"]["subject"] == "Kernel died <b>"
    assert api.http.get(path).status_code == 401  # a program without a key
    with browser_client(server) as client:
        signed_out = client.get(path)
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "/app/sign-in?next=" + path
        sign_in(client, user.email, user.password)
        page = client.get(path)
        assert page.status_code == 200
        assert "Kernel died &lt;b&gt;" in page.text and "It &amp; stopped" in page.text
        assert client.get("/support/tickets/99999999").status_code == 404
        assert client.get("/support/tickets/abc").status_code == 404
    with browser_client(server) as other:
        sign_in(other, stranger.email, stranger.password)
        assert other.get(path).status_code == 404


def test_keys_page_input_errors(server: Server, api: ApiClient, admin_key: str) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client:
        sign_in(client, account.email, account.password)
        token = csrf_of(client.get("/app/keys").text)
        for data, text in (
            ({"expire_days": "3"}, "Choose when the key expires."),
            ({"project_id": "../../etc"}, "invalid project_id"),
            ({"project_id": "00000000-0000-4000-8000-000000000000"}, "must be collaborator"),
            ({"name": "n" * 201}, None),
        ):
            response = client.post("/app/keys", data={"csrf_token": token, **data})
            if text is None:
                # Longer names are cut to what a name may hold.
                assert response.status_code == 200
            else:
                assert response.status_code == 400 and text in response.text, data
        for key_id in ("abc", "1" * 30):
            gone = client.post(f"/app/keys/{key_id}/revoke", data={"csrf_token": token})
            assert gone.status_code == 404
        # Somebody else's key is not revoked (and nothing says whether it exists).
        other = sign_up(api, admin_key)
        with browser_client(server) as theirs:
            sign_in(theirs, other.email, other.password)
            made = theirs.post(
                "/app/keys",
                data={"csrf_token": csrf_of(theirs.get("/app/keys").text), "name": "theirs"},
            )
            secret = re.search(r'id="secret" type="text" value="([^"]+)"', made.text)
            revoke = re.search(r'action="/app/keys/(\d+)/revoke"', made.text)
            assert secret and revoke
        silent = client.post(f"/app/keys/{revoke.group(1)}/revoke", data={"csrf_token": token})
        assert silent.status_code == 200
        assert api.call("ping", secret.group(1)).event == "pong"
        listing = client.get("/app/keys")
        assert "theirs" not in listing.text
        assert PASSWORD not in listing.text


def test_expired_sessions_and_old_failures_are_forgotten(
    server: Server, api: ApiClient, admin_key: str, db: Database
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client:
        sign_in(client, account.email, "wrong password")
        sign_in(client, account.email, account.password)
        digest = hashlib.sha256(client.cookies["calchub_session"].encode()).hexdigest()
    db.execute(
        update(web_sessions)
        .where(web_sessions.c.token_hash == digest)
        .values(expire=utcnow() - timedelta(seconds=1))
    )
    db.execute(
        update(sign_in_failures)
        .where(sign_in_failures.c.email_address == account.email)
        .values(time=utcnow() - timedelta(hours=2))
    )

    def left() -> int:
        sessions = db.execute(select(web_sessions).where(web_sessions.c.token_hash == digest))
        failures = db.execute(
            select(sign_in_failures).where(sign_in_failures.c.email_address == account.email)
        )
        return len(sessions) + len(failures)

    # The scheduler (every second in the tests) removes both.
    deadline = time.monotonic() + 30
    while left() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left() == 0


def test_banning_an_account_suspends_its_sessions(
    server: Server, api: ApiClient, admin_key: str
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client:
        sign_in(client, account.email, account.password)
        assert client.get("/app/keys").status_code == 200
        server.cli("admin", "ban", account.account_id)
        try:
            assert client.get("/app/keys").status_code == 303
            refused = sign_in(client, account.email, account.password)
            assert refused.status_code == 401 and "This account is banned." in refused.text
        finally:
            server.cli("admin", "unban", account.account_id)
        # As with its API keys, lifting the ban gives the account its sessions back.
        assert client.get("/app/keys").status_code == 200


def _session_ids(page: str) -> list[str]:
    return re.findall(r'action="/app/sessions/([A-Za-z0-9]+)/end"', page)


def _session_row(db: Database, client: object) -> Any:
    token = client.cookies["calchub_session"]  # type: ignore[attr-defined]
    digest = hashlib.sha256(token.encode()).hexdigest()
    rows = db.execute(select(web_sessions).where(web_sessions.c.token_hash == digest))
    return rows[0] if rows else None


def test_sessions_page_lists_the_accounts_own_sessions_newest_first(
    server: Server, api: ApiClient, admin_key: str, db: Database
) -> None:
    account, stranger = sign_up(api, admin_key), sign_up(api, admin_key)
    with (
        browser_client(server, "10.250.1.1") as old,
        browser_client(server, "10.250.1.2") as new,
        browser_client(server) as theirs,
    ):
        sign_in(old, account.email, account.password)
        sign_in(new, account.email, account.password)
        sign_in(theirs, stranger.email, stranger.password)
        # Signed in a minute apart, as far as the rows say.
        db.execute(
            update(web_sessions)
            .where(web_sessions.c.id == _session_row(db, old).id)
            .values(created=utcnow() - timedelta(minutes=1))
        )
        page = new.get("/app/sessions")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        mine, before = _session_row(db, new), _session_row(db, old)
        assert _session_ids(page.text) == [mine.id, before.id]
        assert page.text.index("10.250.1.2") < page.text.index("10.250.1.1")
        # The current one is marked, and only it.
        assert page.text.count("This browser</strong>") == 1
        row = page.text.split(f'id="session-{mine.id}"', 1)[1].split("</tr>", 1)[0]
        assert "This browser</strong>" in row
        # Nothing of the other account's, and no token or digest of any session.
        assert _session_row(db, theirs).id not in page.text
        for client in (old, new, theirs):
            assert client.cookies["calchub_session"] not in page.text
            assert _session_row(db, client).token_hash not in page.text
        assert 'href="/app/sessions"' in new.get("/app/keys").text
        # The id is random: no part of it comes from the token or its digest.
        assert mine.id not in mine.token_hash and len(mine.id) == 20


def test_ending_a_session_signs_that_browser_out(
    server: Server, api: ApiClient, admin_key: str, db: Database
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as laptop, browser_client(server) as here:
        sign_in(laptop, account.email, account.password)
        sign_in(here, account.email, account.password)
        lost = _session_row(db, laptop).id
        page = here.get("/app/sessions")
        ended = here.post(f"/app/sessions/{lost}/end", data={"csrf_token": csrf_of(page.text)})
        assert ended.status_code == 200 and "That browser is signed out." in ended.text
        assert _session_ids(ended.text) == [_session_row(db, here).id]
        gone = laptop.get("/app/keys")
        assert gone.status_code == 303
        assert gone.headers["location"] == "/app/sign-in?next=/app/keys"
        assert here.get("/app/keys").status_code == 200
        # Ended once, it is not there to end again.
        again = here.post(f"/app/sessions/{lost}/end", data={"csrf_token": csrf_of(page.text)})
        assert again.status_code == 404 and "There is no such session." in again.text


def test_ending_this_browsers_session_signs_out(
    server: Server, api: ApiClient, admin_key: str, db: Database
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client, browser_client(server) as other:
        sign_in(client, account.email, account.password)
        sign_in(other, account.email, account.password)
        token = client.cookies["calchub_session"]
        mine = _session_row(db, client).id
        page = client.get("/app/sessions")
        out = client.post(f"/app/sessions/{mine}/end", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/app/sign-in"
        assert "calchub_session" not in client.cookies
        assert other.get("/app/keys").status_code == 200
    with browser_client(server) as replay:
        replay.cookies.set("calchub_session", token)
        assert replay.get("/app/sessions").status_code == 303


def test_ending_every_other_session_keeps_this_one(
    server: Server, api: ApiClient, admin_key: str, db: Database
) -> None:
    account, stranger = sign_up(api, admin_key), sign_up(api, admin_key)
    with (
        browser_client(server) as first,
        browser_client(server) as second,
        browser_client(server) as here,
        browser_client(server) as theirs,
    ):
        for client in (first, second, here):
            sign_in(client, account.email, account.password)
        sign_in(theirs, stranger.email, stranger.password)
        page = here.get("/app/sessions")
        assert len(_session_ids(page.text)) == 3
        done = here.post("/app/sessions/end-others", data={"csrf_token": csrf_of(page.text)})
        assert done.status_code == 200 and "Every other browser is signed out." in done.text
        assert _session_ids(done.text) == [_session_row(db, here).id]
        assert "/app/sessions/end-others" not in done.text
        assert first.get("/app/keys").status_code == 303
        assert second.get("/app/keys").status_code == 303
        assert here.get("/app/keys").status_code == 200
        assert theirs.get("/app/keys").status_code == 200
        alone = here.post("/app/sessions/end-others", data={"csrf_token": csrf_of(page.text)})
        assert "You were not signed in anywhere else." in alone.text


def test_another_accounts_session_cannot_be_ended(
    server: Server, api: ApiClient, admin_key: str, db: Database
) -> None:
    account, stranger = sign_up(api, admin_key), sign_up(api, admin_key)
    with browser_client(server) as client, browser_client(server) as theirs:
        sign_in(client, account.email, account.password)
        sign_in(theirs, stranger.email, stranger.password)
        their_row = _session_row(db, theirs)
        token = csrf_of(client.get("/app/sessions").text)
        # One answer for them all: the page does not tell whether the id exists elsewhere,
        # and the digest (the table's key) is no name for a session.
        for session_id in (their_row.id, "A" * 20, "x" * 200, "not-an-id", their_row.token_hash):
            refused = client.post(f"/app/sessions/{session_id}/end", data={"csrf_token": token})
            assert refused.status_code == 404, session_id
            assert "There is no such session." in refused.text
            assert their_row.id not in refused.text
        assert _session_row(db, theirs) == their_row
        assert theirs.get("/app/keys").status_code == 200
        assert client.get("/app/keys").status_code == 200


def test_sessions_forms_need_their_csrf_token(
    server: Server, api: ApiClient, admin_key: str, db: Database
) -> None:
    account = sign_up(api, admin_key)
    with browser_client(server) as client, browser_client(server) as other:
        sign_in(client, account.email, account.password)
        sign_in(other, account.email, account.password)
        target = _session_row(db, other).id
        # Another session's token (valid there) is no good here.
        elsewhere = csrf_of(other.get("/app/sessions").text)
        for data in ({}, {"csrf_token": "x" * 64}, {"csrf_token": elsewhere}):
            for path in (f"/app/sessions/{target}/end", "/app/sessions/end-others"):
                refused = client.post(path, data=data)
                assert refused.status_code == 403 and "not sent from this site" in refused.text
        assert other.get("/app/keys").status_code == 200
        assert _session_row(db, other).id == target


def test_sessions_page_needs_signing_in(server: Server) -> None:
    with browser_client(server) as client:
        page = client.get("/app/sessions")
        assert page.status_code == 303
        assert page.headers["location"] == "/app/sign-in?next=/app/sessions"
        for path in ("/app/sessions/" + "A" * 20 + "/end", "/app/sessions/end-others"):
            refused = client.post(path, data={"csrf_token": "x" * 32})
            assert refused.status_code == 303
            assert refused.headers["location"].startswith("/app/sign-in?next=")
