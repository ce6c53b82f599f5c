"""Turning an agent's error reply into the runtime's exceptions."""

from __future__ import annotations

from typing import Any

from calchub.runtime.base import FileFailure, QuotaExceeded, RuntimeFailure


def agent_error(reply: dict[str, Any]) -> RuntimeFailure:
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
    return FileFailure(
        code,
        str(error.get("syscall") or "open"),
        str(error.get("path") or ""),
        message,
        size=size if isinstance(size, int) else None,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0
