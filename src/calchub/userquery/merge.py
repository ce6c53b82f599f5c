"""Deep merge of a JSON value into a stored JSON field (spec §4.1, with its Recommendation:
arrays are replaced wholesale instead of being merged index by index)."""

from __future__ import annotations

import copy
from typing import Any


def deep_merge(stored: Any, patch: dict[str, Any]) -> dict[str, Any]:
    """`patch` merged into `stored`: null deletes a key, an object merges recursively, any
    other value replaces. `stored` is not modified."""
    result: dict[str, Any] = copy.deepcopy(stored) if isinstance(stored, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = deep_merge(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def apply_default(value: Any, default: Any) -> Any:
    """A get default: used when the value is null, else its missing top-level keys are added
    (one level only, as CoCalc does)."""
    if default is None:
        return value
    if value is None:
        return copy.deepcopy(default)
    if isinstance(value, dict) and isinstance(default, dict):
        merged = dict(value)
        for key, fallback in default.items():
            if merged.get(key) is None:
                merged[key] = copy.deepcopy(fallback)
        return merged
    return value
