"""Where opened files really are, links resolved, in the sandbox's view. The hub decides from
these whether a path that looked public really leads to a public place."""

from __future__ import annotations

import os
import posixpath


def real_path_of(fd: int) -> str | None:
    """Where the open file or folder `fd` really is. Taken from the descriptor itself, so a
    link swapped after the open cannot misreport it; None when that is unknown (no /proc)
    or the file was deleted meanwhile (its name then means nothing)."""
    try:
        if os.fstat(fd).st_nlink == 0:
            return None
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def copied_from(path: str, is_dir: bool) -> str | None:
    """Where a copy of `path` really reads: a folder is followed to where it is; anything
    else keeps its own name inside its real parent folder, since a copy takes a link as a
    link. None when unknown."""
    folder, name = (path, "") if is_dir else posixpath.split(path)
    try:
        fd = os.open(folder or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        real = real_path_of(fd)
    finally:
        os.close(fd)
    if real is None or not name:
        return real
    return posixpath.join(real, name)
