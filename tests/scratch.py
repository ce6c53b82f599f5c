"""Scratch folders for project homes and runtime folders, removed after every test session.

Each session gets one folder under the scratch parent (CALCHUB_TEST_SCRATCH, by default
<tmp>/calchub-tests) and holds an flock on it while it runs. At the end of the session,
failed or not, every sandbox whose runtime folder is in there is stopped and the folder is
removed. A session that was killed outright cannot do that: the next session sweeps every
folder whose lock nobody holds any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

LOCK_NAME = ".session.lock"


def scratch_parent() -> Path:
    configured = os.environ.get("CALCHUB_TEST_SCRATCH")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "calchub-tests"


class ScratchSession:
    """This session's scratch folder (made on first use) and the sweeping of old ones."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._lock_fd: int | None = None

    @property
    def root(self) -> Path:
        if self._root is None:
            parent = scratch_parent()
            parent.mkdir(mode=0o711, parents=True, exist_ok=True)
            sweep_abandoned(parent)
            root = Path(tempfile.mkdtemp(prefix="s", dir=parent))
            root.chmod(0o711)
            fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._root, self._lock_fd = root, fd
        return self._root

    def folder(self, prefix: str) -> Path:
        """A new folder for project homes or runtime state. Short, for socket paths."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.root))

    def finish(self) -> None:
        if self._root is None:
            return
        remove_session(self._root)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self._root = self._lock_fd = None


def sweep_abandoned(parent: Path) -> None:
    """Remove the folders of sessions that ended without cleaning up (killed, crashed)."""
    with contextlib.suppress(FileNotFoundError):
        for folder in parent.iterdir():
            if folder.is_dir() and not folder.is_symlink() and not _locked(folder):
                remove_session(folder)


def _locked(folder: Path) -> bool:
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        # Made a moment ago and not locked yet, or never locked: judge by its age.
        try:
            return (folder.stat().st_mtime + 60) > time.time()
        except FileNotFoundError:
            return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def remove_session(folder: Path) -> None:
    """Stop every sandbox whose runtime folder is inside `folder`, then delete it all."""
    for runtime_root in _runtime_roots(folder):
        stop_sandboxes(runtime_root)
    shutil.rmtree(folder, ignore_errors=True)


def stop_sandboxes(runtime_root: Path) -> None:
    """Stop every project whose state is in `runtime_root`."""
    ids = [e.name for e in runtime_root.iterdir() if e.is_dir() and e.name[:1] != "."]
    asyncio.run(_stop_projects(runtime_root, ids))


def _runtime_roots(folder: Path) -> list[Path]:
    """Runtime folders (the session's direct children holding an installed agent)."""
    found = []
    for child in folder.iterdir():
        if not child.is_symlink() and (child / ".agent").is_dir():
            found.append(child)
    return found


async def _stop_projects(runtime_root: Path, project_ids: list[str]) -> None:
    from calchub.runtime import LocalRuntime

    runtime = LocalRuntime(runtime_root / "unused", runtime_root)
    try:
        for project_id in project_ids:
            with contextlib.suppress(ValueError, OSError):
                await runtime.stop(project_id)
    finally:
        await runtime.close()


session = ScratchSession()


def scratch_folder(prefix: str) -> Path:
    """A new private folder (0700), removed at the end of the test session. The session's
    folder above it is traversable, so it may hold a runtime root."""
    return session.folder(prefix)
