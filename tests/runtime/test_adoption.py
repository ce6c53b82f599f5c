"""A sandbox outlives the hub that started it: killing the hub (a crash, an upgrade) leaves
every project and its processes running, and another runtime on the machine (a restarted
hub) adopts them by their sockets, works in them, notices their end and stops them."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from calchub.runtime import LocalRuntime, reaping
from tests.runtime.conftest import Projects, Shell, outside_of, processes_of, zombies_of

ROOT = Path(__file__).resolve().parents[2]

# A hub of its own: starts the project, leaves a background process in it, says so, waits.
HUB = """
import asyncio, json, sys
from pathlib import Path
from calchub.runtime import ExecRequest, LocalRuntime, ProjectSpec, Quota

async def main():
    facts = json.loads(sys.argv[1])
    rt = LocalRuntime(Path(facts["projects_root"]), Path(facts["runtime_root"]))
    spec = ProjectSpec(facts["project_id"], facts["uid"], Quota())
    await rt.start(spec)
    script = "nohup sleep 600 >/dev/null 2>&1 & echo $!"
    done = await rt.exec(spec, ExecRequest(script, [], "", 20.0, None, True))
    print(done.stdout.strip(), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _run_and_kill_a_hub(facts: dict[str, object]) -> str:
    """Run the hub above until its project runs, then SIGKILL it; returns what it printed."""
    hub = subprocess.Popen(
        [sys.executable, "-c", HUB, json.dumps(facts)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hub.stdout is not None
        return hub.stdout.readline().strip()
    finally:
        hub.send_signal(signal.SIGKILL)
        hub.wait()


async def test_a_killed_hubs_sandboxes_keep_running_and_are_adopted(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    spec = projects.spec(runtime)
    facts = {
        "projects_root": str(runtime.projects_root),
        "runtime_root": str(runtime.runtime_root),
        "project_id": spec.project_id,
        "uid": spec.uid,
    }
    # The killed hub's sandbox is reparented to the nearest subreaper above it, which
    # reaps it once it ends: this process here, as a service manager would be.
    reaping.become_subreaper()
    sleeper = await asyncio.to_thread(_run_and_kill_a_hub, facts)
    assert sleeper.isdigit(), sleeper

    # The hub is gone; its sandbox and what runs in it are not.
    assert any("sleep 600" in p for p in processes_of(spec.uid))
    status = await runtime.status(spec.project_id)
    assert status.running
    # Nothing of the project ran outside its sandbox's tree, then or now.
    assert outside_of(runtime, spec.project_id, spec.uid) == []
    # This runtime adopts it: same sandbox, same background process.
    found = await sh(spec, "pgrep -fx 'sleep 600' >/dev/null && echo alive")
    assert found.stdout == "alive\n", found.stderr
    assert (await runtime.status(spec.project_id)).pid == status.pid

    await runtime.stop(spec.project_id)
    assert processes_of(spec.uid) == []
    assert zombies_of(spec.uid) == []
    assert not (runtime.runtime_root / spec.project_id).exists()
