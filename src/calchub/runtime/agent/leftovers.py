"""Where unfinished writes and copies keep their partial files: one hidden folder in the
home, so that what a crash leaves behind is found without walking the whole home.

Each write holds an flock on its temporary file, and each copy on a lock file in its own
folder, for as long as it runs. Anything nobody holds a lock on is debris of a write or copy
that was killed: it goes when the project starts and whenever a new write or copy begins.
Finished files appear only by rename, so they are never partial.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time

from .project import Project

FOLDER = ".calchub-tmp"
LOCK = ".lock"
# A file or folder just created is locked a moment later; never take it for debris.
GRACE_S = 5.0


def folder_of(project: Project) -> str:
    return os.path.join(project.home, FOLDER)


def _usable_folder(project: Project) -> str | None:
    """The folder, created if needed; None when something else has the name (the project
    may have put a file or a link there)."""
    path = folder_of(project)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return None
    return path


def new_file(project: Project, target_dir: str, mode: int) -> tuple[int, str]:
    """A locked temporary file to be renamed into `target_dir` once written: in the shared
    folder when the target is in the home (one mount, so the rename works), else next to
    the target (in /tmp, say)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    name = f".w-{os.urandom(8).hex()}.calchub-tmp"
    home = project.home.rstrip("/") + "/"
    if (target_dir.rstrip("/") + "/").startswith(home):
        for _ in range(3):  # another write may remove the empty folder meanwhile
            folder = _usable_folder(project)
            if folder is None:
                break
            try:
                fd = os.open(os.path.join(folder, name), flags, mode)
            except FileNotFoundError:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            return fd, os.path.join(folder, name)
    path = os.path.join(target_dir, name)
    fd = os.open(path, flags, mode)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd, path


def tidy(project: Project) -> None:
    """Remove the shared folder once it is empty, so homes do not show it for nothing."""
    with contextlib.suppress(OSError):
        os.rmdir(folder_of(project))


def new_copy_folder(project: Project) -> tuple[int, str] | None:
    """A locked folder for rsync's partial files (its --temp-dir), or None when the shared
    folder is unusable (rsync then keeps them next to their targets)."""
    folder = _usable_folder(project)
    if folder is None:
        return None
    path = os.path.join(folder, f"c-{os.urandom(8).hex()}")
    try:
        os.mkdir(path, 0o700)
    except FileNotFoundError:
        return None  # removed by another write meanwhile: keep partial files by targets
    fd = os.open(os.path.join(path, LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd, path


def release_copy_folder(project: Project, fd: int, path: str) -> None:
    import shutil  # on use: its imports would cost every project's start

    shutil.rmtree(path, ignore_errors=True)
    os.close(fd)
    tidy(project)


def sweep(project: Project, *, everything: bool = False) -> int:
    """Remove what killed writes and copies left behind; returns how many were removed.
    `everything` (at project start, when no write or copy can be running) skips the lock
    checks."""
    folder = folder_of(project)
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    if not names:
        return 0
    import shutil  # on use: its imports would cost every project's start

    removed = 0
    for name in names:
        path = os.path.join(folder, name)
        if everything or _abandoned(path):
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
                removed += 1
            except OSError:
                continue
    return removed


def _abandoned(path: str) -> bool:
    """Nobody holds its lock. A copy folder takes its lock right after it is made, and a
    write file is locked right after it is created: without a lock, only what is older
    than a few seconds counts."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    settled = st.st_mtime < time.time() - GRACE_S
    lock = os.path.join(path, LOCK) if stat.S_ISDIR(st.st_mode) else path
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return settled
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return settled or stat.S_ISDIR(st.st_mode)
