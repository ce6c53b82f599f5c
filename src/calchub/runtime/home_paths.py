"""Paths an agent reports, made relative to the project's home. They come from inside a
sandbox: anything not plainly inside the home counts as outside it."""

from __future__ import annotations

import posixpath
from typing import Any


def relative_to_home(real: Any, home: str) -> str | None:
    """`real` relative to `home` ("" for the home itself), or None when it is not inside it."""
    if not isinstance(real, str) or not real.startswith("/"):
        return None
    normal = posixpath.normpath(real)
    if normal == home:
        return ""
    if normal.startswith(home + "/"):
        return normal[len(home) + 1 :]
    return None
