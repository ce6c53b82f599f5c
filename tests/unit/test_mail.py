from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from calchub.mail import (
    Email,
    Mailer,
    MailError,
    OutboxMailer,
    SmtpMailer,
    invite_email,
    list_messages,
    mailer_from_settings,
    password_reset_email,
    verify_address_email,
    welcome_email,
)
from tests.smtp_sink import SmtpSink

FROM = "noreply@calchub.example"


def make_email(**overrides: object) -> Email:
    fields: dict[str, object] = {
        "to": "alice@example.com",
        "subject": "Hello",
        "text": "plain body",
        "from_addr": FROM,
    }
    fields.update(overrides)
    return Email(**fields)  # type: ignore[arg-type]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- Email -------------------------------------------------------------------------------


def test_to_mime_plain_headers() -> None:
    mime = make_email(
        from_name="Calc Hub",
        reply_to="owner@example.com",
        bcc=("hidden@example.com",),
        category="welcome",
    ).to_mime()

    assert mime["To"] == "alice@example.com"
    assert mime["Subject"] == "Hello"
    assert mime["From"] == "Calc Hub <noreply@calchub.example>"
    assert mime["Reply-To"] == "owner@example.com"
    assert mime["X-Calchub-Category"] == "welcome"
    assert mime["Message-ID"].endswith("@calchub.example>")
    assert mime["Date"] is not None
    assert mime["Bcc"] is None
    assert b"hidden@example.com" not in mime.as_bytes()
    assert mime.get_content_type() == "text/plain"
    assert mime.get_content().strip() == "plain body"


def test_to_mime_html_is_multipart_alternative() -> None:
    mime = make_email(html="<p>html body</p>").to_mime()

    assert mime.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in mime.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    html_part = mime.get_body(preferencelist=("html",))
    assert html_part is not None
    assert "<p>html body</p>" in html_part.get_content()


def test_to_mime_optional_headers_absent() -> None:
    mime = make_email().to_mime()

    assert mime["From"] == FROM
    assert mime["Reply-To"] is None
    assert mime["X-Calchub-Category"] is None


def test_from_name_is_quoted_and_encoded() -> None:
    special = make_email(from_name="Hub, Inc.").to_mime()
    assert str(special["From"]) == '"Hub, Inc." <noreply@calchub.example>'

    unicode_name = make_email(from_name="Zoë Über").to_mime()
    assert unicode_name["From"].addresses[0].display_name == "Zoë Über"
    # Non-ASCII names must go out as RFC 2047 encoded words.
    raw_from = next(
        line for line in unicode_name.as_bytes().splitlines() if line.startswith(b"From:")
    )
    assert raw_from.isascii()
    assert b"=?utf-8?" in raw_from.lower()


def test_message_ids_are_unique() -> None:
    email = make_email()
    assert email.to_mime()["Message-ID"] != email.to_mime()["Message-ID"]


@pytest.mark.parametrize("field", ["to", "subject", "from_addr", "from_name", "reply_to"])
@pytest.mark.parametrize("payload", ["x\r\nBcc: victim@example.com", "x\nBcc: v@e.com", "x\ry"])
def test_header_injection_rejected(field: str, payload: str) -> None:
    value = f"a{payload}@example.com" if field in {"from_addr"} else payload
    with pytest.raises(ValueError, match="line breaks"):
        make_email(**{field: value})


def test_header_injection_in_bcc_rejected() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        make_email(bcc=("ok@example.com", "evil@example.com\r\nX-Evil: 1"))


def test_email_is_immutable_and_bcc_normalised() -> None:
    email = make_email(bcc=["b@example.com"])
    assert email.bcc == ("b@example.com",)
    assert email.envelope_recipients == ["alice@example.com", "b@example.com"]
    with pytest.raises(AttributeError):
        email.subject = "changed"  # type: ignore[misc]


def test_multiline_body_is_allowed() -> None:
    mime = make_email(text="line 1\r\nline 2\n").to_mime()
    assert "line 2" in mime.get_content()


# -- Outbox ------------------------------------------------------------------------------


async def test_outbox_writes_private_files(tmp_path: Path) -> None:
    outbox = tmp_path / "data" / "outbox"
    mailer = OutboxMailer(outbox)
    assert isinstance(mailer, Mailer)

    await mailer.send(make_email(subject="first", bcc=("copy@example.com",)))
    await mailer.send(make_email(subject="second", html="<b>hi</b>"))
    await mailer.close()

    assert stat.S_IMODE(os.stat(outbox).st_mode) == 0o700
    files = sorted(outbox.iterdir())
    assert len(files) == 2, files
    for file in files:
        assert file.suffix == ".eml"
        stamp, _, token = file.stem.partition("-")
        assert len(stamp) == len("20240101T000000.000000")
        assert stamp[8] == "T"
        assert len(token) == 8
        int(token, 16)
        assert stat.S_IMODE(file.stat().st_mode) == 0o600


async def test_outbox_round_trip(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path)
    for subject in ("one", "two", "three"):
        await mailer.send(
            make_email(subject=subject, from_name="Hub", html=f"<p>{subject}</p>", category="c")
        )

    messages = list_messages(tmp_path)

    assert [message["Subject"] for message in messages] == ["one", "two", "three"]
    first = messages[0]
    assert first["From"] == "Hub <noreply@calchub.example>"
    assert first["X-Calchub-Category"] == "c"
    text_part = first.get_body(preferencelist=("plain",))
    html_part = first.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    assert text_part.get_content().strip() == "plain body"
    assert "<p>one</p>" in html_part.get_content()


async def test_outbox_records_bcc(tmp_path: Path) -> None:
    await OutboxMailer(tmp_path).send(make_email(bcc=("a@example.com", "b@example.com")))
    (message,) = list_messages(tmp_path)
    assert [a.addr_spec for a in message["Bcc"].addresses] == ["a@example.com", "b@example.com"]


def test_list_messages_missing_directory(tmp_path: Path) -> None:
    assert list_messages(tmp_path / "nope") == []


async def test_outbox_ignores_temporary_files(tmp_path: Path) -> None:
    (tmp_path / ".partial.tmp").write_bytes(b"Subject: half written\r\n")
    await OutboxMailer(tmp_path).send(make_email())
    assert len(list_messages(tmp_path)) == 1


async def test_outbox_write_failure_is_mail_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(MailError, match="outbox"):
        await OutboxMailer(blocker / "outbox").send(make_email())


# -- SMTP URL parsing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "security"),
    [
        ("smtp://mail.example.com", "mail.example.com", 25, "plain"),
        ("smtp://mail.example.com:2525", "mail.example.com", 2525, "plain"),
        ("smtp://mail.example.com?starttls=1", "mail.example.com", 25, "starttls"),
        ("smtp://mail.example.com:587/?starttls=true", "mail.example.com", 587, "starttls"),
        ("smtp://mail.example.com?starttls=0", "mail.example.com", 25, "plain"),
        ("smtps://mail.example.com", "mail.example.com", 465, "tls"),
        ("smtps://mail.example.com:1465", "mail.example.com", 1465, "tls"),
        ("smtp+starttls://mail.example.com", "mail.example.com", 587, "starttls"),
        ("SMTP+STARTTLS://Mail.Example.com:25", "mail.example.com", 25, "starttls"),
        ("smtp://[::1]:2525", "::1", 2525, "plain"),
    ],
)
def test_from_url_schemes(url: str, host: str, port: int, security: str) -> None:
    mailer = SmtpMailer.from_url(url)
    assert (mailer.hostname, mailer.port, mailer.security) == (host, port, security)
    assert mailer.username is None
    assert mailer.timeout == 30


def test_from_url_credentials_are_decoded() -> None:
    mailer = SmtpMailer.from_url("smtps://user%40example.com:p%40ss%3Aw%2Frd@mail.example.com")
    assert mailer.username == "user@example.com"
    assert mailer._password == "p@ss:w/rd"


def test_from_url_timeout() -> None:
    assert SmtpMailer.from_url("smtp://h?timeout=2.5").timeout == 2.5
    assert SmtpMailer.from_url("smtp://h?starttls=1&timeout=10").timeout == 10


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail.example.com", "scheme"),
        ("mail.example.com", "scheme"),
        ("", "scheme"),
        ("smtp://", "host"),
        ("smtp://:25", "host"),
        ("smtp://user:pw@", "host"),
        ("smtp://mail.example.com:abc", "port"),
        ("smtp://mail.example.com:70000", "port"),
        ("smtp://mail.example.com:0", "port"),
        ("smtp://mail.example.com:-1", "port"),
        ("smtp://mail.example.com/path", "path"),
        ("smtp://mail.example.com?timeout=0", "timeout"),
        ("smtp://mail.example.com?timeout=soon", "timeout"),
        ("smtp://mail.example.com?starttls=maybe", "starttls"),
        ("smtps://mail.example.com?starttls=1", "starttls"),
        ("smtp://mail.example.com?tls=1", "unknown option"),
        ("smtp://user@mail.example.com", "password"),
    ],
)
def test_from_url_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmtpMailer.from_url(url)


def test_repr_hides_password() -> None:
    mailer = SmtpMailer.from_url("smtp+starttls://bob:s3cr%21t@mail.example.com")
    text = repr(mailer)
    assert "s3cr" not in text
    assert "bob" in text
    assert "mail.example.com" in text
    assert "s3cr" not in str(mailer)


def test_factory_selects_transport(tmp_path: Path) -> None:
    smtp = mailer_from_settings("smtps://mail.example.com", tmp_path)
    assert isinstance(smtp, SmtpMailer)
    for unset in (None, "", "  "):
        outbox = mailer_from_settings(unset, tmp_path)
        assert isinstance(outbox, OutboxMailer)
        assert outbox.directory == tmp_path / "outbox"


# -- SMTP delivery -----------------------------------------------------------------------


async def test_smtp_end_to_end_with_bcc(sink: SmtpSink) -> None:
    mailer = SmtpMailer.from_url(sink.url + "?timeout=10")
    assert isinstance(mailer, Mailer)
    email = make_email(
        to="Alice <alice@example.com>",
        from_name="Calc Hub",
        html="<p>hi</p>",
        bcc=("audit@example.com", "ops@example.com"),
        category="invite",
    )

    await mailer.send(email)
    await mailer.close()

    (received,) = sink.wait_for(1)
    assert received.envelope_from == FROM
    assert received.envelope_to == ["alice@example.com", "audit@example.com", "ops@example.com"]
    message = received.message
    assert message["Subject"] == "Hello"
    assert message["To"] == "Alice <alice@example.com>"
    assert message["From"] == "Calc Hub <noreply@calchub.example>"
    assert message["X-Calchub-Category"] == "invite"
    assert message["Bcc"] is None
    assert "audit@example.com" not in message.as_string()
    assert message.get_content_type() == "multipart/alternative"


async def test_smtp_sends_several_messages(sink: SmtpSink) -> None:
    mailer = mailer_from_settings(sink.url, Path("/nonexistent"))
    for index in range(3):
        await mailer.send(make_email(subject=f"n{index}"))
    received = sink.wait_for(3)
    assert [r.message["Subject"] for r in received] == ["n0", "n1", "n2"]
    sink.clear()
    assert sink.messages == []


async def test_smtp_connection_refused_is_mail_error() -> None:
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{closed_port()}?timeout=5")
    with pytest.raises(MailError, match=r"127\.0\.0\.1"):
        await mailer.send(make_email())


async def test_smtp_refused_recipient_is_mail_error() -> None:
    with SmtpSink(refuse_recipients=["alice@example.com"]) as refusing:
        mailer = SmtpMailer.from_url(refusing.url)
        with pytest.raises(MailError, match="Mailbox unavailable"):
            await mailer.send(make_email())
        assert refusing.messages == []


async def test_smtp_refused_bcc_still_delivers() -> None:
    with SmtpSink(refuse_recipients=["gone@example.com"]) as refusing:
        mailer = SmtpMailer.from_url(refusing.url)
        await mailer.send(make_email(bcc=("gone@example.com", "kept@example.com")))
        (received,) = refusing.wait_for(1)
        assert received.envelope_to == ["alice@example.com", "kept@example.com"]


def test_sink_wait_for_times_out(sink: SmtpSink) -> None:
    with pytest.raises(AssertionError, match="expected 1"):
        sink.wait_for(1, timeout=0.05)


# -- Templates ---------------------------------------------------------------------------


def html_of(email: Email) -> str:
    assert email.html is not None
    return email.html


def test_welcome_email() -> None:
    email = welcome_email(
        to="new@example.com",
        site_name="CalcHub",
        dns="calc.example.com",
        verify_url="https://calc.example.com/verify?token=abc&x=1",
        from_addr=FROM,
        from_name="CalcHub",
    )
    assert email.subject == "Welcome to CalcHub - calc.example.com"
    assert email.to == "new@example.com"
    assert "Welcome" in email.text
    assert "https://calc.example.com/verify?token=abc&x=1" in email.text
    assert 'href="https://calc.example.com/verify?token=abc&amp;x=1"' in html_of(email)
    for body in (email.text, html_of(email)):
        assert "valid for 24 hours" in body


def test_verify_address_email() -> None:
    email = verify_address_email(
        to="moved@example.com",
        site_name="CalcHub",
        verify_url="https://calc.example.com/auth/verify?token=abc",
        from_addr=FROM,
        from_name=None,
    )
    assert email.subject == "Confirm your email address for CalcHub"
    assert email.category == "verify_address"
    for body in (email.text, html_of(email)):
        assert "https://calc.example.com/auth/verify?token=abc" in body
        assert "valid for 24 hours" in body
        assert "ignore this message" in body


def test_password_reset_email() -> None:
    email = password_reset_email(
        to="user@example.com",
        site_name="CalcHub",
        reset_url="https://calc.example.com/reset/xyz",
        from_addr=FROM,
        from_name=None,
    )
    assert email.subject == "CalcHub Password Reset"
    assert email.category == "password_reset"
    for body in (email.text, html_of(email)):
        assert "https://calc.example.com/reset/xyz" in body
        assert "24 hours" in body
        assert "only once" in body
        assert "ignore" in body
        assert "reset the password" in body


def test_invite_email() -> None:
    body_html = "<p>Hi Bob,</p><p>Please join <b>my project</b> &amp; enjoy.</p>"
    email = invite_email(
        to="bob@example.com",
        subject="Alice invited you to a project",
        body_html=body_html,
        invitee_email="bob@example.com",
        base_url="https://calc.example.com/",
        project_url="https://calc.example.com/projects/123",
        from_addr=FROM,
        from_name="Alice via CalcHub",
        reply_to="alice@example.com",
        site_name="CalcHub",
    )
    assert email.subject == "Alice invited you to a project"
    assert email.category == "invite"
    assert email.reply_to == "alice@example.com"
    assert body_html in html_of(email)
    assert "Hi Bob," in email.text
    assert "Please join my project & enjoy." in email.text
    assert "<b>" not in email.text
    assert (
        "To accept the invitation: open https://calc.example.com/app, sign in or create an "
        "account using bob@example.com, then open https://calc.example.com/projects/123"
    ) in email.text
    assert email.text.index("Please join") < email.text.index("To accept the invitation")
    mime = email.to_mime()
    assert mime["Reply-To"] == "alice@example.com"
    assert mime["From"] == "Alice via CalcHub <noreply@calchub.example>"


def test_templates_escape_hostile_values() -> None:
    hostile = "<script>alert(1)</script>"
    welcome = welcome_email(
        to="a@example.com",
        site_name=hostile,
        dns='"><img src=x>',
        verify_url='https://x/"onmouseover="alert(1)',
        from_addr=FROM,
        from_name=hostile,
    )
    reset = password_reset_email(
        to="a@example.com",
        site_name=hostile,
        reset_url="https://x/<b>",
        from_addr=FROM,
        from_name=None,
    )
    invite = invite_email(
        to="a@example.com",
        subject="Invitation",
        body_html="<p>ok</p>",
        invitee_email="<i>a@example.com</i>",
        base_url="https://x/<y>",
        project_url='https://x/p"1',
        from_addr=FROM,
        from_name=None,
        reply_to=None,
        site_name=hostile,
    )
    for email in (welcome, reset, invite):
        html = html_of(email)
        assert "<script>" not in html
        assert "&lt;script&gt;" in html
        assert "<img" not in html
        assert "<i>" not in html
        assert '"onmouseover' not in html
        assert 'p"1' not in html
    assert welcome.subject == f'Welcome to {hostile} - "><img src=x>'
    assert reset.subject == f"{hostile} Password Reset"


def test_template_rejects_header_injection() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        password_reset_email(
            to="a@example.com",
            site_name="Evil\r\nBcc: victim@example.com",
            reset_url="https://x",
            from_addr=FROM,
            from_name=None,
        )
