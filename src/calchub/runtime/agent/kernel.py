"""What the standard library does not wrap: namespaces, capabilities, the parent-death
signal and subreapers (through libc), plus rlimits and process-tree sweeping."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import time

from . import signals as signal

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CAP_SYS_ADMIN = 21
CAP_SETFCAP = 31
_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), "prctl")


def die_with_parent() -> None:
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def become_subreaper(on: bool = True) -> None:
    """Orphaned descendants come back to us instead of going to init."""
    prctl(PR_SET_CHILD_SUBREAPER, int(on))


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def _set_capabilities(effective: int, permitted: int) -> None:
    """capset(2) for capabilities 0-31 (the ones we use); 32-63 are dropped."""
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(effective, permitted, 0), _CapData(0, 0, 0))
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def keep_only_sys_admin() -> None:
    """Owning a user namespace gives every capability in it, and some (like bypassing file
    permissions on the project's own files) would make file operations differ from what
    the project's user may do. Keep CAP_SYS_ADMIN, only permitted: a process holding a
    capability cannot be traced by the capability-less commands of its user namespace."""
    _set_capabilities(0, 1 << CAP_SYS_ADMIN)


def keep_only_setfcap() -> None:
    """What an agent outside a sandbox keeps of its own user namespace's capabilities: only
    what lets the user namespaces made below it map uid 0 when it runs as root."""
    _set_capabilities(1 << CAP_SETFCAP, 1 << CAP_SETFCAP)


def own_user_namespace(new_pid_namespace: bool = True) -> bool:
    """Enter a user namespace of our own (same uid inside and out), by default one whose
    next child is PID 1 of a new PID namespace. The project's commands run in such
    namespaces below the agent's: from another user namespace, and without capabilities in
    the agent's, they cannot trace the agent's processes. False when the namespace cannot be
    made (nothing changed then); OSError when it was made but our uid could not be mapped."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | (CLONE_NEWPID if new_pid_namespace else 0)
    if _libc.unshare(flags) != 0:
        return False
    # Past this point a failure leaves us in a namespace without our uid: it raises.
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    return True


def apply_rlimits(limits: dict[str, int]) -> None:
    names = {
        "as": resource.RLIMIT_AS,
        "nproc": resource.RLIMIT_NPROC,
        "fsize": resource.RLIMIT_FSIZE,
        "cpu": resource.RLIMIT_CPU,
    }
    for name, value in limits.items():
        if name in names:
            resource.setrlimit(names[name], (int(value), int(value)))


def process_stats() -> Iterator[tuple[int, list[bytes]]]:
    """Each process's pid and the fields of its /proc/<pid>/stat after the command name
    (the first is its state, the second its parent), from one pass over /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1:
            yield int(entry), fields


def below(stats: Iterable[tuple[int, list[bytes]]], root: int) -> list[int]:
    """The pids below `root` in one snapshot of `process_stats`, each once."""
    children: dict[int, list[int]] = {}
    for pid, fields in stats:
        children.setdefault(int(fields[1]), []).append(pid)
    found: list[int] = []
    stack = list(children.get(root, ()))
    seen = set(stack)
    while stack:
        pid = stack.pop()
        found.append(pid)
        for child in children.get(pid, ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return found


def descendants_of(root: int) -> list[int]:
    return below(process_stats(), root)


def kill_tree(init_pid: int, nested: bool) -> None:
    """SIGKILL an init process and everything below it, and reap it."""
    if not nested:
        # Without a PID namespace the init is a subreaper, so orphans (setsid, double fork)
        # stay below it; sweep until nothing is left, since processes may fork meanwhile.
        for _ in range(200):
            below = descendants_of(init_pid)
            if not below:
                break
            for pid in below:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
    # As PID 1 of its namespace, its death takes every process in there along.
    with contextlib.suppress(ProcessLookupError):
        os.kill(init_pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(init_pid, 0)


def reap_children() -> list[int]:
    """Reap every child that has ended; their pids."""
    reaped: list[int] = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append(pid)


def has_children() -> bool:
    """Reap what has already ended; True when some child is still running."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def exit_code_of(status: int) -> int:
    """A wait status as a shell would report it: 128+N for death by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
