"""The suite cleans up after itself: project homes (owned by project uids) and running
sandboxes are gone after a session that failed, and after one that was killed outright."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from calchub.runtime import reaping
from tests.runtime.conftest import live_processes_of, processes_of, zombies_of
from tests.scratch import remove_session, scratch_parent

ROOT = Path(__file__).resolve().parents[2]
INNER = "tests/runtime/scratch_session.py"


def _session(parent: Path, report: Path, *, wait: bool = False) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CALCHUB_TEST_SCRATCH": str(parent), "CALCHUB_SCRATCH_REPORT": str(report)}
    if wait:
        env["CALCHUB_SCRATCH_WAIT"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", INNER],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _reported(report: Path, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while not report.exists() or not report.read_text():
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"the inner session ended early:\n{output}")
        assert time.monotonic() < deadline, "the inner session never started its project"
        time.sleep(0.05)
    found = json.loads(report.read_text())
    assert isinstance(found, dict)
    return found


@pytest.fixture
def parent() -> Iterator[Path]:
    """The inner sessions' scratch parent: outside ours, which would make paths too long
    for sockets."""
    folder = Path(tempfile.mkdtemp(prefix="chx", dir=scratch_parent().parent))
    folder.chmod(0o711)
    try:
        yield folder / "tests"
    finally:
        remove_session(folder / "tests")
        shutil.rmtree(folder, ignore_errors=True)


def test_a_failed_session_leaves_no_homes_or_sandboxes(parent: Path) -> None:
    report = parent.parent / "report.json"
    proc = _session(parent, report)
    out, _ = proc.communicate(timeout=120)
    assert report.exists(), out.decode()
    assert proc.returncode == 1, out.decode()  # the inner test failed, as it should
    facts = _reported(report, proc)
    report.unlink()
    assert not Path(str(facts["home"])).exists()
    assert [p.name for p in parent.iterdir()] == []
    assert processes_of(int(str(facts["uid"]))) == []


def test_a_killed_sessions_leftovers_go_with_the_next_session(parent: Path) -> None:
    report = parent.parent / "report.json"
    killed = _session(parent, report, wait=True)
    try:
        facts = _reported(report, killed)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    report.unlink()
    uid = int(str(facts["uid"]))
    # The killed session's sandbox goes to the subreaper above it, which reaps it when it
    # ends: this process, once it has started a sandbox of its own.
    left = [pidfd for pid in live_processes_of(uid) if (pidfd := reaping.pin(pid)) is not None]
    home = Path(str(facts["home"]))
    assert home.exists()  # nothing could clean up after SIGKILL
    # The next session sweeps what the killed one left (and fails on purpose itself).
    after = _session(parent, report)
    out, _ = after.communicate(timeout=120)
    assert after.returncode == 1, out.decode()
    report.unlink()
    assert not home.exists()
    assert list(parent.iterdir()) == []
    assert processes_of(uid) == []
    for pidfd in left:
        reaping.reap_when_ended(pidfd)
        os.close(pidfd)
    assert zombies_of(uid) == []
