"""Reduce caller-written HTML to a small, safe subset before it goes into an email.

Allowed: b, i, em, strong, p, br, ul, ol, li, code, pre, and a with an http(s) href (and no
other attribute). Every other tag is kept as visible, escaped text, so nothing a caller writes
can run script, load remote content or restyle the message. Links are allowed on every
project: the invitation names its sender, so a link is no worse than one in any other mail.
"""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset(
    {"b", "i", "em", "strong", "p", "br", "ul", "ol", "li", "a", "code", "pre"}
)
_VOID_TAGS = frozenset({"br"})
_SAFE_SCHEMES = ("http://", "https://")


def _safe_href(attrs: list[tuple[str, str | None]]) -> str | None:
    for name, value in attrs:
        if name == "href" and value is not None:
            href = value.strip()
            if href.lower().startswith(_SAFE_SCHEMES) and not any(c.isspace() for c in href):
                return href
    return None


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._open: list[str] = []

    def _escaped_source(self) -> None:
        self._out.append(escape(self.get_starttag_text() or ""))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self._escaped_source()
        elif tag in _VOID_TAGS:
            self._out.append(f"<{tag}>")
        elif tag == "a":
            href = _safe_href(attrs)
            self._out.append(f'<a href="{escape(href, quote=True)}">' if href else "<a>")
            self._open.append(tag)
        else:
            self._out.append(f"<{tag}>")
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            self._out.append(f"<{tag}>")
        else:
            self._escaped_source()

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS:
            return
        if tag not in ALLOWED_TAGS or tag not in self._open:
            self._out.append(escape(f"</{tag}>"))
            return
        # Close whatever was left open inside it, so the output stays well nested.
        while self._open:
            inner = self._open.pop()
            self._out.append(f"</{inner}>")
            if inner == tag:
                break

    def handle_data(self, data: str) -> None:
        self._out.append(escape(data, quote=False))

    def result(self) -> str:
        # An unclosed tag must not swallow the text the template puts after the body.
        closing = "".join(f"</{tag}>" for tag in reversed(self._open))
        return "".join(self._out) + closing


def sanitize_html(fragment: str) -> str:
    """The fragment with only whitelisted markup left as markup; comments are dropped."""
    parser = _Sanitizer()
    parser.feed(fragment)
    parser.close()
    return parser.result()
