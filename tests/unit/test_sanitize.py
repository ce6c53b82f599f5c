"""The whitelist sanitizer for caller-written invitation bodies."""

from __future__ import annotations

import pytest

from calchub.mail.sanitize import sanitize_html


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("<p>Hi <b>you</b></p>", "<p>Hi <b>you</b></p>"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        (
            '<a href="https://e.org/?a=1&b=2" onclick="x()">l</a>',
            '<a href="https://e.org/?a=1&amp;b=2">l</a>',
        ),
        ('<a href="javascript:alert(1)">l</a>', "<a>l</a>"),
        ('<a href=" data:text/html,x">l</a>', "<a>l</a>"),
        ('<p style="color:red">x', "<p>x</p>"),
        ("<img src=x onerror=y>", "&lt;img src=x onerror=y&gt;"),
        ("a <!-- hidden --> b", "a  b"),
        ("<br/>x</b>", "<br>x&lt;/b&gt;"),
        ("<ul><li>1<li>2</ul>", "<ul><li>1<li>2</li></li></ul>"),
        ("<scr<script>ipt>", "&lt;scr&lt;script&gt;ipt&gt;"),
        ("5 < 6 & 7 > 3", "5 &lt; 6 &amp; 7 &gt; 3"),
    ],
)
def test_sanitize(given: str, expected: str) -> None:
    assert sanitize_html(given) == expected


def test_unclosed_tags_are_closed() -> None:
    assert sanitize_html("<b><i>x") == "<b><i>x</i></b>"
