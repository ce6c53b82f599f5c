"""Turning an agent's error reply into the runtime's exceptions."""

from __future__ import annotations

from typing import Any

from calchub.runtime.base import FileFailure, QuotaExceeded, RuntimeFailure
from calchub.runtime.home_paths import relative_to_home


def agent_error(reply: dict[str, Any], home: str | None = None) -> RuntimeFailure:
    """`home` is the project's home as the agent reports real paths (links resolved)."""
    error = reply.get("error")
    if not isinstance(error, dict):
        return RuntimeFailure("the project sent a malformed reply")
    code = str(error.get("code") or "EIO")
    if code == "EDQUOT":
        return QuotaExceeded(
            _int(error.get("used")), _int(error.get("quota")), _int(error.get("needed"))
        )
    message = str(error.get("message") or code)
    if code == "EAGENT":
        return RuntimeFailure(f"project agent error: {message}")
    size = error.get("size")
    # Only a failure after its file was opened says where that file really is.
    opened = "real_path" in error
    return FileFailure(
        code,
        str(error.get("syscall") or "open"),
        str(error.get("path") or ""),
        message,
        size=size if isinstance(size, int) else None,
        opened=opened,
        real_path=relative_to_home(error.get("real_path"), home) if opened and home else None,
    )


def unknown_operation(reply: dict[str, Any]) -> bool:
    """The reply of an agent started before it knew the operation asked for."""
    error = reply.get("error")
    return (
        not reply.get("ok")
        and isinstance(error, dict)
        and error.get("code") == "EAGENT"
        and "unknown operation" in str(error.get("message"))
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0
