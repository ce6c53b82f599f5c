"""Ids derived from a project and a path, as CoCalc's `db.sha1(project_id, path)` makes them
(syncstrings.string_id, file_use.id)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from calchub.userquery.context import Caller


def _part(value: Any) -> str:
    """Strings as they are, absent values as nothing, anything else as its JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sha1_of(*parts: Any) -> str:
    """Lower-case hex sha1 of the parts joined."""
    text = "".join(_part(part) for part in parts)
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def string_id_of(query: dict[str, Any], caller: Caller | None = None) -> str:
    """sha1(project_id + path) of a syncstring query."""
    return sha1_of(query.get("project_id"), query.get("path"))
