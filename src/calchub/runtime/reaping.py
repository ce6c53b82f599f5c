"""The hub as the parent of its running sandboxes.

Once a project's agent is up, bubblewrap's monitor (a process outside the sandbox that only
waits for it) is ended, and the sandbox's PID 1 is reparented. The hub makes itself a child
subreaper first, so the kernel hands such orphans to the hub rather than to the machine's
init (which, in some containers, never reaps them); the hub reaps each of them through a
pidfd. A pidfd names exactly one process, so a reap here never takes the exit status of a
child that subprocess or asyncio waits for, even when pids are reused.

What else a subreaper hub inherits, and who reaps it: pasta (`network.tear_down`), and the
sandbox below a one-shot reader's or a failed start's monitor (`end_launched`). What an
earlier hub process started is not this one's child: it goes to the subreaper or init above
that hub, as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import select
import subprocess

from calchub.runtime import procfs

PR_SET_CHILD_SUBREAPER = 36
END_WAIT_S = 10.0  # how long a killed process may take to end before it is left to init


@functools.cache
def become_subreaper() -> bool:
    """Make this process the one orphaned descendants are reparented to; False if it cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def pin(pid: int, *, parent: int | None = None, started: int | None = None) -> int | None:
    """A pidfd for `pid` if it is still the process meant (the child of `parent`, or the one
    that started at `started`), else None. A zombie may be pinned: it is still to be reaped."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    if (parent is None or procfs.parent(pid) == parent) and (
        started is None or procfs.start_time(pid) == started
    ):
        return pidfd
    os.close(pidfd)
    return None


def reap(pidfd: int) -> None:
    """Reap the pinned process if it has ended and is this hub's child; nothing if it is
    still running, or not (or no longer) our child."""
    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)


def reap_when_ended(pidfd: int, wait_s: float = END_WAIT_S) -> None:
    """Blocking: wait (at most `wait_s`) for a killed process to end, then reap it."""
    select.select([pidfd], [], [], wait_s)  # readable once it has ended
    reap(pidfd)


def end_launched(proc: subprocess.Popen[bytes]) -> None:
    """Blocking: SIGKILL a process this hub launched and everything below it, and reap it.
    Its children (a sandbox's PID 1 below bubblewrap's monitor) may outlive it by a moment
    and be reparented to this hub: they are pinned first and reaped too."""
    pinned = (pin(pid, parent=proc.pid) for pid in procfs.children(proc.pid))
    children = [pidfd for pidfd in pinned if pidfd is not None]
    try:
        procfs.kill(procfs.tree(proc.pid))
        proc.wait()
        for pidfd in children:
            reap_when_ended(pidfd)
    finally:
        for pidfd in children:
            with contextlib.suppress(OSError):
                os.close(pidfd)
