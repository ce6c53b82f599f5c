"""Builders for the messages the server sends.

Every interpolated value is HTML-escaped in the HTML part; only ``body_html`` of an
invitation, which the caller has already sanitized, is embedded verbatim.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

from calchub.mail.message import Email

PASSWORD_RESET_CATEGORY = "password_reset"  # noqa: S105 - a category tag, not a secret
INVITE_CATEGORY = "invite"
WELCOME_CATEGORY = "welcome"
VERIFY_CATEGORY = "verify_address"
SUPPORT_TICKET_CATEGORY = "support_ticket"
# Verification links expire after a day (calchub.accounts.creation.VERIFY_LIFETIME).
VERIFY_VALIDITY = "The link is valid for 24 hours and can be used only once."

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCK_TAGS = _HEADINGS | {
    "br",
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "blockquote",
    "pre",
    "hr",
}
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title"})


class _TextExtractor(HTMLParser):
    """Collects the readable text of an HTML fragment, one line per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._chunks: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth += 1
        elif tag == "li":
            self._chunks.append("\n- ")
        elif tag in _BLOCK_TAGS:
            self._chunks.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self._chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self._chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._chunks.append(data)

    def text(self) -> str:
        lines = (re.sub(r"\s+", " ", line).strip() for line in "".join(self._chunks).split("\n"))
        # Collapse runs of blank lines left by nested block elements into one.
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(fragment: str) -> str:
    """Strip tags from an HTML fragment, keeping paragraph breaks."""
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    return parser.text()


def _link(url: str) -> str:
    quoted = escape(url, quote=True)
    return f'<a href="{quoted}">{quoted}</a>'


def _document(paragraphs: list[str]) -> str:
    body = "\n".join(paragraphs)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        f"{body}\n</body></html>\n"
    )


def welcome_email(
    *,
    to: str,
    site_name: str,
    dns: str,
    verify_url: str,
    from_addr: str,
    from_name: str | None,
) -> Email:
    """Greeting sent after sign-up, with the link that verifies the address."""
    text = (
        f"Welcome to {site_name}!\n\n"
        f"Your account at {dns} has been created.\n\n"
        "To verify your email address, open this link and press the button on its page:\n"
        f"{verify_url}\n\n"
        f"{VERIFY_VALIDITY}\n\n"
        f"-- {site_name}\n"
    )
    html = _document(
        [
            f"<p>Welcome to {escape(site_name)}!</p>",
            f"<p>Your account at {escape(dns)} has been created.</p>",
            "<p>To verify your email address, open this link and press the button on its page:"
            f"<br>{_link(verify_url)}</p>",
            f"<p>{VERIFY_VALIDITY}</p>",
            f"<p>&mdash; {escape(site_name)}</p>",
        ]
    )
    return Email(
        to=to,
        subject=f"Welcome to {site_name} - {dns}",
        text=text,
        html=html,
        from_addr=from_addr,
        from_name=from_name,
        category=WELCOME_CATEGORY,
    )


def verify_address_email(
    *,
    to: str,
    site_name: str,
    verify_url: str,
    from_addr: str,
    from_name: str | None,
) -> Email:
    """Sent to an address an account has just switched to, to confirm the account owns it."""
    text = (
        f"Your {site_name} account now uses this email address.\n\n"
        "To confirm it, open this link and press the button on its page:\n"
        f"{verify_url}\n\n"
        f"{VERIFY_VALIDITY}\n\n"
        "If you did not ask for this, ignore this message: the address stays unconfirmed.\n\n"
        f"-- {site_name}\n"
    )
    html = _document(
        [
            f"<p>Your {escape(site_name)} account now uses this email address.</p>",
            "<p>To confirm it, open this link and press the button on its page:"
            f"<br>{_link(verify_url)}</p>",
            f"<p>{VERIFY_VALIDITY}</p>",
            "<p>If you did not ask for this, ignore this message: the address stays "
            "unconfirmed.</p>",
            f"<p>&mdash; {escape(site_name)}</p>",
        ]
    )
    return Email(
        to=to,
        subject=f"Confirm your email address for {site_name}",
        text=text,
        html=html,
        from_addr=from_addr,
        from_name=from_name,
        category=VERIFY_CATEGORY,
    )


def password_reset_email(
    *,
    to: str,
    site_name: str,
    reset_url: str,
    from_addr: str,
    from_name: str | None,
) -> Email:
    """Message carrying a single-use password reset link."""
    text = (
        f"Somebody asked to reset the password of your {site_name} account.\n\n"
        "To choose a new password, open this link:\n"
        f"{reset_url}\n\n"
        "The link is valid for 24 hours and can be used only once.\n\n"
        "If you did not ask to reset your password, you can safely ignore this email; "
        "your password stays unchanged.\n\n"
        f"-- {site_name}\n"
    )
    html = _document(
        [
            f"<p>Somebody asked to reset the password of your {escape(site_name)} account.</p>",
            f"<p>To choose a new password, open this link:<br>{_link(reset_url)}</p>",
            "<p>The link is valid for 24 hours and can be used only once.</p>",
            "<p>If you did not ask to reset your password, you can safely ignore this email; "
            "your password stays unchanged.</p>",
            f"<p>&mdash; {escape(site_name)}</p>",
        ]
    )
    return Email(
        to=to,
        subject=f"{site_name} Password Reset",
        text=text,
        html=html,
        from_addr=from_addr,
        from_name=from_name,
        category=PASSWORD_RESET_CATEGORY,
    )


def invite_email(
    *,
    to: str,
    subject: str,
    body_html: str,
    invitee_email: str,
    base_url: str,
    project_url: str,
    from_addr: str,
    from_name: str | None,
    reply_to: str | None,
    site_name: str,
    reply_to_name: str | None = None,
) -> Email:
    """Invitation to collaborate on a project.

    ``body_html`` is the inviter's message, already sanitized by the caller.
    """
    app_url = f"{base_url.rstrip('/')}/app"
    instructions = (
        f"To accept the invitation: open {app_url}, sign in or create an account using "
        f"{invitee_email}, then open {project_url}"
    )
    body_text = html_to_text(body_html)
    text = f"{body_text}\n\n" if body_text else ""
    text += f"{instructions}\n\n-- {site_name}\n"
    html = _document(
        [
            f"<div>{body_html}</div>",
            "<p>To accept the invitation: "
            f"open {_link(app_url)}, "
            f"sign in or create an account using <b>{escape(invitee_email)}</b>, "
            f"then open {_link(project_url)}</p>",
            f"<p>&mdash; {escape(site_name)}</p>",
        ]
    )
    return Email(
        to=to,
        subject=subject,
        text=text,
        html=html,
        from_addr=from_addr,
        from_name=from_name,
        reply_to=reply_to,
        reply_to_name=reply_to_name,
        category=INVITE_CATEGORY,
    )


def support_ticket_email(
    *,
    to: str,
    ticket_id: int,
    subject: str,
    description: str,
    requester: str,
    requester_email: str,
    url: str,
    from_addr: str,
    site_name: str,
) -> Email:
    """A new support ticket, for the site's help address; replies go to the requester."""
    text = (
        f"Support ticket #{ticket_id} from {requester} <{requester_email}>\n\n"
        f"{description}\n\n"
        f"{url}\n\n-- {site_name}\n"
    )
    html = _document(
        [
            f"<p>Support ticket #{ticket_id} from {escape(requester)} "
            f"&lt;{escape(requester_email)}&gt;</p>",
            f"<pre>{escape(description)}</pre>",
            f"<p>{_link(url)}</p>",
            f"<p>&mdash; {escape(site_name)}</p>",
        ]
    )
    return Email(
        to=to,
        # One line, whatever the requester typed.
        subject=f"[{site_name} #{ticket_id}] {' '.join(subject.split())}",
        text=text,
        html=html,
        from_addr=from_addr,
        from_name=f"{site_name} Support",
        reply_to=requester_email,
        category=SUPPORT_TICKET_CATEGORY,
    )
