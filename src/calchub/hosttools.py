"""The system programs calchub runs, and which Debian package brings each one.

Checked once at server start so that an operator reads in the log what to install, named by
the package that actually ships the program (setpriv comes with util-linux, not bubblewrap).
"""

from __future__ import annotations

import shutil

# program and the Debian package that provides it (the sandbox's own programs are checked
# by the runtime)
COPY_TOOL = ("rsync", "rsync")


def missing(program: str, package: str) -> str | None:
    if shutil.which(program) is None:
        return f"{program} is not installed (Debian: apt-get install {package})"
    return None


def copy_problem() -> str | None:
    """Why copies between projects cannot run here, or None. Projects still run without it."""
    if problem := missing(*COPY_TOOL):
        return f"copies between projects cannot run on this server: {problem}"
    return None
