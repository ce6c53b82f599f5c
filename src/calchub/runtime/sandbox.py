"""Command lines that launch a project's agent, and the check that sandboxing works here.

A sandboxed project runs as its own uid (`setpriv`) inside bubblewrap: its own PID, network,
IPC and UTS namespaces; read-only /usr and /etc; a private /tmp; its home at
/projects/<project_id> as the only writable host folder; nothing else of the host's file
system, so other homes and the server's folders do not exist inside.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROJECTS_DIR = "/projects"
AGENT_MOUNT = "/opt/calchub"  # the agent package is AGENT_MOUNT/agent
AGENT_LAUNCHER = "agent/__main__.py"
SYSTEM_PYTHON = "/usr/bin/python3"
# The agent uses the standard library only: -S skips site-packages and their .pth files,
# which would add their imports to every project's start. (Jupyter kernels, which need
# site-packages, run in a process of their own.)
AGENT_PYTHON = (SYSTEM_PYTHON, "-I", "-S")
PROBE_UID = 65534
AGENT_OOM_SCORE_ADJ = -500

# Joins each cgroup by writing 0 (itself) into the file given for it (see CgroupManager.create),
# then becomes the real command, so the whole sandbox is born inside its cgroups (no window
# where a child escapes them). First,
# as root, it lowers the sandbox's OOM score where it may (CAP_SYS_RESOURCE): the agent and
# its workers are then the last the kernel kills when the project runs out of memory
# (commands raise theirs again), and nothing in the sandbox can go lower than that.
_JOIN_CGROUPS = (
    f"echo {AGENT_OOM_SCORE_ADJ} 2>/dev/null > /proc/self/oom_score_adj; "
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo 0 > "$1" || exit 125; shift; n=$((n-1)); done; '
    'exec "$@"'
)


@dataclass(frozen=True)
class SandboxCheck:
    available: bool
    reason: str


def home_in_sandbox(project_id: str) -> str:
    return f"{PROJECTS_DIR}/{project_id}"


def _system_dirs() -> list[str]:
    """Bind /usr and make the usual top-level folders point into it, or bind them when the
    host keeps them separate (no merged /usr)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_dir() and not top.is_symlink():
            args += ["--ro-bind", str(top), str(top)]
        elif (Path("/usr") / name).is_dir():
            args += ["--symlink", f"usr/{name}", str(top)]
    return args


def bwrap_argv(
    *,
    uid: int,
    project_id: str,
    home: Path,
    agent_home: Path,
    network: bool,
    allow_user_namespaces: bool,
    command: list[str],
    tmp_bytes: int,
    read_only: bool = False,
) -> list[str]:
    """`read_only` makes a short-lived reader: the home bound read-only, and the sandbox
    ends with the hub that started it."""
    inside = home_in_sandbox(project_id)
    argv = ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups", "--"]
    argv += ["bwrap", "--unshare-all"]
    if network:
        argv.append("--share-net")
    if not allow_user_namespaces:
        argv += ["--unshare-user", "--disable-userns"]
    # No --die-with-parent for a project: a sandbox outlives the hub that started it (an
    # upgrade or a crash of the server must not kill every user's processes); hubs adopt it
    # by its socket.
    if read_only:
        argv.append("--die-with-parent")
    # The command is the sandbox's PID 1, with no bubblewrap init above it: the agent reaps
    # what is orphaned, and when it ends every process of the sandbox ends with it.
    argv += ["--as-pid-1", "--new-session", "--clearenv"]
    argv += _system_dirs()
    argv += ["--ro-bind", "/etc", "/etc", "--dev", "/dev", "--proc", "/proc"]
    # /tmp is memory (charged to the project's memory limit): capped, so that filling it
    # leaves room for the agent and for commands, and ends in ENOSPC rather than OOM kills.
    argv += ["--size", str(tmp_bytes), "--tmpfs", "/tmp"]  # noqa: S108
    argv += ["--dir", PROJECTS_DIR, "--ro-bind" if read_only else "--bind", str(home), inside]
    argv += ["--ro-bind", str(agent_home), AGENT_MOUNT]
    argv += ["--chdir", inside, "--setenv", "HOME", inside, "--setenv", "LANG", "C.UTF-8"]
    argv += ["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"]
    # Last: nothing outside home and /tmp may be created by the project, even on the tmpfs
    # bubblewrap builds the root from.
    argv += ["--remount-ro", "/"]
    return [*argv, *command]


def with_cgroups(join_files: list[Path], argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv  # no cgroups to join, and no right to lower the OOM score
    files = [str(p) for p in join_files]
    return ["/bin/sh", "-c", _JOIN_CGROUPS, "sh", str(len(files)), *files, *argv]


def traversal_problem(path: Path) -> str | None:
    """Why a project's uid could not reach `path` (each folder above it needs o+x)."""
    for folder in [path, *path.parents]:
        try:
            mode = folder.stat().st_mode
        except OSError as exc:
            return f"{folder}: {exc.strerror}"
        if not mode & stat.S_IXOTH:
            return f"{folder} is not traversable by project users (it needs o+x)"
    return None


@functools.cache
def check_host() -> SandboxCheck:
    """Whether this machine can run sandboxed projects: root, bubblewrap, setpriv, the system
    Python, and a trial sandbox that actually starts."""
    if os.geteuid() != 0:
        return SandboxCheck(False, "sandboxing needs root (to run each project as its own uid)")
    # The Debian package that ships each program.
    for tool, package in (("bwrap", "bubblewrap"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            reason = f"{tool} is not installed (Debian: apt-get install {package})"
            return SandboxCheck(False, reason)
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return SandboxCheck(False, f"{SYSTEM_PYTHON} is missing; the project agent runs on it")
    probe = [
        "setpriv", "--reuid", str(PROBE_UID), "--regid", str(PROBE_UID), "--clear-groups", "--",
        "bwrap", "--unshare-all", "--die-with-parent", *_system_dirs(),
        "--proc", "/proc", "--dev", "/dev", SYSTEM_PYTHON, "-I", "-c", "pass",
    ]  # fmt: skip
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxCheck(False, f"trial sandbox failed: {exc}")
    if done.returncode != 0:
        return SandboxCheck(False, f"trial sandbox failed: {done.stderr.strip()}")
    return SandboxCheck(True, "ok")
