"""The pure parts of folder listings: reading an agent's (untrusted) reply, the public rule
for listings, and ordering and paging."""

from __future__ import annotations

from typing import Any

import pytest

from calchub.files.listing import ordered, page
from calchub.files.public_listing import leads_to_public, shown_entries
from calchub.runtime import DirectoryEntry, RuntimeFailure
from calchub.runtime.listing import parse_listing, relative_to_home

HOME = "/projects/p"


def reply(entries: Any, real: Any = HOME) -> dict[str, Any]:
    return {"ok": True, "entries": entries, "real_path": real}


def test_parse_sorts_and_types_entries() -> None:
    listing = parse_listing(
        reply(
            [
                {"name": "b", "size": 3, "mtime": 5},
                {"name": "a", "isdir": True, "mtime": 1.5},
            ]
        ),
        HOME,
        10,
    )
    assert [e.to_json() for e in listing.entries] == [
        {"name": "a", "isdir": True, "mtime": 1.5},
        {"name": "b", "size": 3, "mtime": 5.0},
    ]
    assert listing.real_path == ""


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "x",
        [1],
        [{"name": "a", "size": 1}],
        [{"name": 1, "size": 1, "mtime": 1}],
        [{"name": "", "size": 1, "mtime": 1}],
        [{"name": "..", "size": 1, "mtime": 1}],
        [{"name": "a/b", "size": 1, "mtime": 1}],
        [{"name": "a\0", "size": 1, "mtime": 1}],
        [{"name": "a", "size": -1, "mtime": 1}],
        [{"name": "a", "size": True, "mtime": 1}],
        [{"name": "a", "size": "1", "mtime": 1}],
        [{"name": "a", "mtime": 1}],
        [{"name": "a", "size": 1, "mtime": float("nan")}],
        [{"name": "a", "size": 1, "mtime": True}],
        [{"name": "a", "isdir": 1, "mtime": 1}],
        [{"name": str(i), "size": 1, "mtime": 1} for i in range(4)],  # more than allowed
    ],
)
def test_parse_refuses_malformed_replies(bad: Any) -> None:
    with pytest.raises(RuntimeFailure, match="malformed listing"):
        parse_listing(reply(bad), HOME, 3)


@pytest.mark.parametrize(
    ("real", "expected"),
    [
        (HOME, ""),
        (HOME + "/", ""),
        (HOME + "/a/b", "a/b"),
        (HOME + "/a/../b", "b"),
        (HOME + "x", None),
        (HOME + "/..", None),
        ("/etc", None),
        ("projects/p/a", None),
        (None, None),
        (7, None),
    ],
)
def test_relative_to_home(real: Any, expected: str | None) -> None:
    assert relative_to_home(real, HOME) == expected


def test_public_listing_rule() -> None:
    public = ["pub", "docs/A1/", "one.txt"]
    assert leads_to_public("", public) and leads_to_public("docs", public)
    assert not leads_to_public("do", public) and not leads_to_public("pub", public)
    assert not leads_to_public("docs/..", public) and not leads_to_public("/docs", public)
    whole = shown_entries("pub/sub", public)
    assert whole is not None and whole("anything")
    top = shown_entries("", public)
    assert top is not None
    assert [n for n in ("pub", "docs", "one.txt", "two.txt", "pubx") if top(n)] == [
        "pub",
        "docs",
        "one.txt",
    ]
    docs = shown_entries("docs", public)
    assert docs is not None and docs("A1") and not docs("A2")
    for folder in ("pubx", "private", "docs/A2", "/pub", "pub/.."):
        assert shown_entries(folder, public) is None, folder
    everything = shown_entries("x/y", [""])
    assert everything is not None and everything(".git")
    assert shown_entries("x", []) is None


def test_order_and_pages() -> None:
    entries = [
        DirectoryEntry("b", 2.0),
        DirectoryEntry("a", 1.0),
        DirectoryEntry("c", 2.0, isdir=True),
    ]
    assert [e.name for e in ordered(entries, newest_first=False)] == ["a", "b", "c"]
    by_time = ordered(entries, newest_first=True)
    assert [e.name for e in by_time] == ["b", "c", "a"]
    assert page(by_time, 0, -1) == (by_time, False)
    assert page(by_time, 1, 1) == (by_time[1:2], True)
    assert page(by_time, 1, 2) == (by_time[1:], False)
    assert page(by_time, 0, 0) == ([], True)
    assert page(by_time, 5, 1) == ([], False)
