"""Project homes may live in a folder private to root (a data folder under /root, one made by
mktemp): the sandbox reaches the home through a mount in the runtime root, made while the
project runs and removed when it stops."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest_asyncio

from calchub.runtime import ExecRequest, ExecResult, LocalRuntime, ProjectSpec
from calchub.runtime.mounts import is_mount_point
from tests.runtime.conftest import Projects
from tests.scratch import scratch_folder


@pytest_asyncio.fixture
async def private_runtime() -> AsyncIterator[LocalRuntime]:
    # Two private levels above the homes, as with a data folder under /root.
    outer = Path(tempfile.mkdtemp(prefix="calchub-private-"))
    (outer / "data").mkdir(mode=0o700)
    projects_root = outer / "data" / "projects"
    rt = LocalRuntime(projects_root, scratch_folder("r"))
    try:
        yield rt
    finally:
        await rt.close()
        shutil.rmtree(outer, ignore_errors=True)


async def test_homes_in_a_private_folder_work(
    private_runtime: LocalRuntime, projects: Projects
) -> None:
    rt = private_runtime

    def sh(spec: ProjectSpec, script: str) -> Awaitable[ExecResult]:
        return rt.exec(spec, ExecRequest(script, [], "", 20.0, None, True))

    check = rt.check_available()
    assert check.available, check.reason
    for folder in (rt.projects_root, rt.projects_root.parent, rt.projects_root.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, folder
    spec = projects.spec(rt)
    await rt.start(spec)
    done = await sh(spec, "echo hi > made && cat made && stat -c %a made")
    assert done.exit_code == 0, done.stderr
    # Projects keep the usual umask (022), not the server's private one.
    assert done.stdout.split() == ["hi", "644"]
    home = rt.projects_root / spec.project_id
    assert (home / "made").read_text() == "hi\n"
    assert os.stat(home).st_uid == spec.uid
    mount_point = rt.runtime_root / ".homes" / spec.project_id
    assert is_mount_point(mount_point)
    await rt.stop(spec.project_id)
    assert not is_mount_point(mount_point)
    assert not mount_point.exists()
    assert (home / "made").read_text() == "hi\n"
