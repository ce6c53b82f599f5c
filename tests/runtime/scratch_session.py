"""A test session that the cleanup tests (test_scratch.py) run in a pytest of its own: it
starts a real sandbox with files in its home, says where, and then fails, or waits to be
killed. Not collected by default (the name does not start with test_)."""

from __future__ import annotations

import asyncio
import json
import os
import select
from pathlib import Path

from calchub.runtime import LocalRuntime, ProjectSpec
from tests.runtime.conftest import Shell


async def test_leaves_a_running_project_behind(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    done = await sh(project, "head -c 100000 /dev/zero > big && mkdir -p a/b && touch a/b/c")
    assert done.exit_code == 0, done.stderr
    report = Path(os.environ["CALCHUB_SCRATCH_REPORT"])
    home = runtime.projects_root / project.project_id
    facts = json.dumps({"uid": project.uid, "home": str(home)})
    await asyncio.to_thread(report.write_text, facts)
    if os.environ.get("CALCHUB_SCRATCH_WAIT"):
        # Blocks until the outer test kills this session.
        select.select([], [], [])
    raise AssertionError("this session fails on purpose")
