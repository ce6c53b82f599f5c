"""The project this agent serves: its configuration, paths and command environment."""

from __future__ import annotations

import posixpath

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Config:
    """What the hub told this agent at start (see calchub.runtime.local)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw  # handed on when the agent re-executes itself (see rest.py)
        self.project_id: str = raw["project_id"]
        self.home: str = raw["home"]
        self.listen_fd: int = raw["listen_fd"]
        # Where to tell the hub that the agent is set up (absent: nobody waits for that).
        self.ready_fd: int | None = raw.get("ready_fd")
        self.idle_timeout_s: float = float(raw.get("idle_timeout_s") or 0)
        self.rlimits: dict[str, int] = raw.get("rlimits") or {}
        self.nested_pidns: bool = bool(raw.get("nested_pidns", True))
        self.die_with_parent: bool = bool(raw.get("die_with_parent", False))
        self.lock_path: str = raw["lock_path"]
        self.tmp_dir: str = raw.get("tmp_dir") or "/tmp"  # noqa: S108 - the sandbox's own tmpfs
        # After this many seconds without requests the agent rests (see rest.py).
        self.quiet_s: float = float(raw.get("quiet_s", 30.0))
        # The home is a file system of its own (a disk image): what it has in use is the
        # home's usage, read in one call instead of walking every file.
        self.home_is_disk: bool = bool(raw.get("home_is_disk", False))


class Project:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.home = config.home

    def resolve(self, path: str) -> str:
        """Textual resolution like Node's path.resolve: relative to home, '..' collapsed."""
        if not path:
            return self.home
        joined = path if path.startswith("/") else f"{self.home}/{path}"
        return posixpath.normpath("/" + joined.lstrip("/"))

    def rsync_path(self, path: str) -> str:
        """Like resolve, keeping a trailing slash: for rsync, "dir/" means its contents."""
        resolved = self.resolve(path)
        return resolved + "/" if path.endswith("/") and resolved != "/" else resolved

    def exec_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "HOME": self.home,
            "PATH": DEFAULT_PATH,
            "LANG": "C.UTF-8",
            "SHELL": "/bin/bash",
            "TMPDIR": self.config.tmp_dir,
            "COCALC_PROJECT_ID": self.config.project_id,
            # The system's Python is read-only in here, so pip cannot harm it: let
            # `pip install` go to the project's own user site instead of refusing (PEP 668).
            "PIP_BREAK_SYSTEM_PACKAGES": "1",
        }
        for key, value in extra.items():
            if isinstance(key, str) and isinstance(value, str) and "\0" not in key + value:
                env[key] = value
        return env
