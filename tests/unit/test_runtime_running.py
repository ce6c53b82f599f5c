"""Whether a watched sandbox still runs is asked of its pidfd, whatever the descriptor's
number: a hub holding a thousand connections has pidfds past select()'s limit of 1024."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from calchub.runtime import LocalRuntime, procfs
from calchub.runtime.state import AgentState

HIGH_FD = 1500


def test_a_sandbox_watched_through_a_high_descriptor() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= HIGH_FD:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, HIGH_FD + 100), hard))
    # A short root: the runtime refuses one too long for its sockets' paths.
    root = Path(tempfile.mkdtemp(prefix="/tmp/calchub-running-"))
    runtime = LocalRuntime(root / "p", root / "r", sandbox=False)
    child = subprocess.Popen(["sleep", "30"])
    pidfd = os.pidfd_open(child.pid)
    try:
        os.dup2(pidfd, HIGH_FD)
        runtime._watched[child.pid] = (HIGH_FD, None)
        state = AgentState(
            pid=child.pid,
            start_time=procfs.start_time(child.pid) or 0,
            uid=os.getuid(),
            started_at=datetime.now(UTC),
            sandboxed=False,
            cgroups=False,
        )
        assert runtime._running(state)
        child.kill()
        child.wait()
        assert not runtime._running(state)
    finally:
        runtime._watched.clear()
        for fd in (pidfd, HIGH_FD):
            os.close(fd)
        child.kill()
        child.wait()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        shutil.rmtree(root, ignore_errors=True)
