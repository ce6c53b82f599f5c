"""JSON merge on set (§4.1) and get defaults (§1.7)."""

from __future__ import annotations

from calchub.userquery.merge import apply_default, deep_merge


def test_merge_deletes_replaces_and_recurses() -> None:
    stored = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2, 3]}
    patch = {"a": None, "b": {"c": None, "x": {"y": 1}}, "e": [9], "f": {}}
    assert deep_merge(stored, patch) == {"b": {"d": 3, "x": {"y": 1}}, "e": [9], "f": {}}
    assert stored == {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2, 3]}


def test_merge_into_missing_or_scalar() -> None:
    assert deep_merge(None, {"a": {"b": 1}}) == {"a": {"b": 1}}
    assert deep_merge({"a": 5}, {"a": {"b": 1}}) == {"a": {"b": 1}}
    assert deep_merge({"a": {}}, {"a": {}}) == {"a": {}}


def test_defaults_one_level() -> None:
    default = {"x": 1, "y": {"z": 2}}
    assert apply_default(None, default) == default
    assert apply_default({"x": 5, "y": {}}, default) == {"x": 5, "y": {}}
    assert apply_default({"x": None}, default) == default
    assert apply_default("", "fallback") == ""
    assert apply_default(None, None) is None
