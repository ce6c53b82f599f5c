"""The Slurm runtime on a real cluster of this machine (the `cluster` fixture): two slurmd
nodes in network namespaces of their own, projects reached over the network channel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from calchub.runtime import (
    ExecRequest,
    ExecResult,
    ExecWatch,
    ProjectSpec,
    Quota,
    RuntimeFailure,
)
from calchub.runtime.base import QuotaExceeded
from calchub.runtime.slurm import SlurmRuntime
from tests.runtime.conftest import Projects, processes_of
from tests.runtime.slurm_cluster import SlurmCluster
from tests.scratch import scratch_folder

WAIT_S = 90.0  # an upper bound for what the cluster notices, never a measurement
WHOLE_NODE = Quota(cores=2, memory_mb=1000)  # one project fills a test node


@pytest.fixture(scope="session")
def shared_roots() -> tuple[Path, Path, Path]:
    """The folder every node and hub sees (here: this machine's)."""
    base = scratch_folder("x")
    base.chmod(0o711)
    return base / "p", base / "r", base / "s"


def new_hub(cluster: SlurmCluster, roots: tuple[Path, Path, Path]) -> SlurmRuntime:
    """A hub's runtime: each call is a hub process of its own, sharing only the folder and
    the cluster."""
    projects_root, runtime_root, sockets = roots
    return SlurmRuntime(
        projects_root,
        runtime_root,
        hub_address=cluster.controller_address,
        slurm_conf=str(cluster.conf),
        node_socket_root=sockets,
        start_timeout_s=WAIT_S,
    )


@pytest_asyncio.fixture
async def hub(
    cluster: SlurmCluster, shared_roots: tuple[Path, Path, Path]
) -> AsyncIterator[SlurmRuntime]:
    rt = new_hub(cluster, shared_roots)
    yield rt
    await rt.close()


def sh(rt: SlurmRuntime, spec: ProjectSpec, script: str) -> asyncio.Future[ExecResult]:
    return asyncio.ensure_future(rt.exec(spec, ExecRequest(script, [], "", 20, None, True)))


def published(rt: SlurmRuntime, spec: ProjectSpec) -> dict[str, object]:
    found = json.loads((rt.runtime_root / spec.project_id / "address.json").read_text())
    assert isinstance(found, dict)
    return found


def job_id(rt: SlurmRuntime, spec: ProjectSpec) -> str:
    return str(json.loads((rt.runtime_root / spec.project_id / "job.json").read_text())["job_id"])


def kill_uid(uid: int) -> None:
    """SIGKILL every process of the project's uid: its agent dies."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    os.kill(int(entry.name), signal.SIGKILL)


async def wait_stopped(rt: SlurmRuntime, spec: ProjectSpec) -> str:
    """The reason the runtime gives once it reports the project stopped."""
    deadline = time.monotonic() + WAIT_S
    while True:
        status = await rt.status(spec.project_id)
        if not status.running and status.reason:
            return status.reason
        assert time.monotonic() < deadline, f"still reported {status}"
        await asyncio.sleep(0.2)


async def test_projects_run_on_different_nodes(
    hub: SlurmRuntime, projects: Projects, cluster: SlurmCluster
) -> None:
    first, second = projects.spec(hub, WHOLE_NODE), projects.spec(hub, WHOLE_NODE)
    await asyncio.gather(hub.start(first), hub.start(second))
    hosts = {published(hub, first)["host"], published(hub, second)["host"]}
    assert hosts == {node.address for node in cluster.nodes}
    for spec in (first, second):
        result = await sh(hub, spec, "id -u; pwd")
        assert result.stdout == f"{spec.uid}\n/projects/{spec.project_id}\n"
        await hub.write_file(spec, "notes/a.txt", b"on a node\n")
        assert await hub.read_file(spec, "notes/a.txt", 100) == b"on a node\n"
        listing = await hub.list_directory(spec, "notes", hidden=False)
        assert [entry.name for entry in listing.entries] == ["a.txt"]
        # The home is on the shared folder, the project's own.
        home = hub.projects_root / spec.project_id
        assert (home / "notes" / "a.txt").stat().st_uid == spec.uid
        assert (await hub.status(spec.project_id)).running


async def test_a_watched_exec_over_the_network_runs_as_a_plain_one(
    hub: SlurmRuntime, projects: Projects
) -> None:
    """A relay passes no news before a reply: the command runs, its output comes at its
    end, and its pid is not known."""
    spec = projects.spec(hub)
    watch = ExecWatch(100)
    request = ExecRequest("echo on a node", [], "", 20, 100, True)
    result = await hub.exec(spec, request, watch)
    assert (result.stdout, result.exit_code) == ("on a node\n", 0)
    assert watch.started.is_set() and watch.pid is None and watch.stdout() == ""


async def test_peeks_never_start_a_project(
    hub: SlurmRuntime, projects: Projects, cluster: SlurmCluster
) -> None:
    spec = projects.spec(hub)
    await hub.write_file(spec, "seen.txt", b"read where it lies")
    job = job_id(hub, spec)
    # Running: the agent on its node answers.
    found = await hub.peek_file(spec, "seen.txt", 100)
    assert found.data == b"read where it lies"
    await hub.stop(spec.project_id)
    assert not (await hub.status(spec.project_id)).running
    # Stopped: read from the shared folder, and still stopped.
    found = await hub.peek_file(spec, "seen.txt", 100)
    assert not (await hub.status(spec.project_id)).running
    assert found.data == b"read where it lies"
    listing = await hub.peek_directory(spec, "", hidden=False)
    assert [entry.name for entry in listing.entries] == ["seen.txt"]
    assert not (await hub.status(spec.project_id)).running
    assert not processes_of(spec.uid)
    # No job was submitted for the reads: the last one is still the cancelled one.
    assert f"JobName=calchub-{spec.project_id}" in cluster.scontrol("-o", "show", "job", job)
    assert cluster.scontrol("-o", "show", "job").count(f"JobName=calchub-{spec.project_id}") == 1


async def test_stop_cancels_the_job(
    hub: SlurmRuntime, projects: Projects, cluster: SlurmCluster
) -> None:
    spec = projects.spec(hub)
    await hub.start(spec)
    job = job_id(hub, spec)
    await hub.stop(spec.project_id)
    shown = cluster.scontrol("-o", "show", "job", job)
    assert "JobState=CANCELLED" in shown, shown
    status = await hub.status(spec.project_id)
    assert not status.running
    assert not processes_of(spec.uid)


async def test_a_killed_agent_is_reported(hub: SlurmRuntime, projects: Projects) -> None:
    spec = projects.spec(hub)
    await hub.start(spec)
    first_job = job_id(hub, spec)
    assert processes_of(spec.uid)
    kill_uid(spec.uid)
    reason = await wait_stopped(hub, spec)
    assert "its cluster job ended" in reason
    # Used again, it starts as a new job.
    assert (await sh(hub, spec, "echo back")).stdout == "back\n"
    assert job_id(hub, spec) != first_job


async def test_statuses_at_once_agree_with_each(hub: SlurmRuntime, projects: Projects) -> None:
    running, killed, never = projects.spec(hub), projects.spec(hub), projects.spec(hub)
    await asyncio.gather(hub.start(running), hub.start(killed))
    kill_uid(killed.uid)
    await wait_stopped(hub, killed)
    ids = [running.project_id, killed.project_id, never.project_id]
    together = await hub.statuses(ids)
    assert together == {project_id: await hub.status(project_id) for project_id in ids}
    assert together[running.project_id].running
    assert "its cluster job ended" in (together[killed.project_id].reason or "")
    assert not together[never.project_id].running
    assert together[never.project_id].reason is None


async def test_a_dead_node_is_noticed_and_reported(
    hub: SlurmRuntime, projects: Projects, cluster: SlurmCluster
) -> None:
    spec = projects.spec(hub, WHOLE_NODE)
    await hub.start(spec)
    host = published(hub, spec)["host"]
    node = next(n for n in cluster.nodes if n.address == host)
    try:
        cluster.kill_node(node)
        # At once: the channel finds nobody there.
        with pytest.raises(RuntimeFailure, match="does not answer"):
            await hub.exec(spec, ExecRequest("true", [], "", 5, None, True))
        # Soon: the controller gives up on the node and so does the runtime.
        reason = await wait_stopped(hub, spec)
        assert "NODE_FAIL" in reason
        assert not processes_of(spec.uid)
    finally:
        cluster.start_node(node)
        await asyncio.to_thread(cluster.wait_idle)


async def test_a_restarted_hub_adopts_running_projects(
    cluster: SlurmCluster, shared_roots: tuple[Path, Path, Path], projects: Projects
) -> None:
    before = new_hub(cluster, shared_roots)
    spec = projects.spec(before)
    await before.start(spec)
    await before.write_file(spec, "kept.txt", b"still here")
    job = job_id(before, spec)
    await before.close()
    after = new_hub(cluster, shared_roots)
    assert (await after.status(spec.project_id)).running
    await after.start(spec)  # adopts: no second job
    assert job_id(after, spec) == job
    assert await after.read_file(spec, "kept.txt", 100) == b"still here"


async def test_two_hubs_share_the_cluster(
    cluster: SlurmCluster, shared_roots: tuple[Path, Path, Path], projects: Projects
) -> None:
    one, two = new_hub(cluster, shared_roots), new_hub(cluster, shared_roots)
    spec = projects.spec(one)
    # Both start it at once: one job.
    await asyncio.gather(one.start(spec), two.start(spec))
    assert (await sh(two, spec, "echo two")).stdout == "two\n"
    assert (await sh(one, spec, "echo one")).stdout == "one\n"
    jobs = cluster.scontrol("-o", "show", "job")
    assert jobs.count(f"JobName=calchub-{spec.project_id}") == 1
    await two.stop(spec.project_id)
    assert not (await one.status(spec.project_id)).running


async def test_an_idle_project_ends_its_job(
    hub: SlurmRuntime, projects: Projects, cluster: SlurmCluster
) -> None:
    spec = projects.spec(hub, Quota(idle_timeout_s=1))
    await hub.start(spec)
    job = job_id(hub, spec)
    deadline = time.monotonic() + WAIT_S
    while (status := await hub.status(spec.project_id)).running:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert status.reason is None  # an idle end is no failure
    # The job ends as a success once its relay has exited and Slurm has cleaned up.
    while re.search(
        r"JobState=(RUNNING|COMPLETING) ", shown := cluster.scontrol("-o", "show", "job", job)
    ):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert "JobState=COMPLETED" in shown, shown
    assert (await hub.status(spec.project_id)).reason is None
    assert not processes_of(spec.uid)


async def test_a_wrong_partition_is_a_clear_failure(
    cluster: SlurmCluster, shared_roots: tuple[Path, Path, Path], projects: Projects
) -> None:
    rt = new_hub(cluster, shared_roots)
    rt.partition = "nowhere"
    spec = projects.spec(rt)
    with pytest.raises(RuntimeFailure, match="sbatch refused"):
        await rt.start(spec)
    assert not (await rt.status(spec.project_id)).running


COPY_OPTIONS: dict[str, object] = {
    "overwrite_newer": False,
    "delete_missing": False,
    "backup": False,
    "exclude": [],
    "timeout_s": None,
}


async def test_copies_between_projects_run_on_the_hub(
    hub: SlurmRuntime, projects: Projects
) -> None:
    src = projects.spec(hub)
    dst = projects.spec(hub, Quota(disk_mb=1))
    await hub.write_file(src, "notes/a.txt", b"from a node\n")
    await hub.write_file(src, "big.bin", b"x" * (2 * 1024 * 1024))
    src_job = job_id(hub, src)
    # Into a project that is not running: the hub copies between the homes on the shared
    # folder, as the target's uid, without submitting a job for either.
    await hub.copy_path(src, "notes", dst, "copied/", **COPY_OPTIONS)  # type: ignore[arg-type]
    copied = hub.projects_root / dst.project_id / "copied" / "a.txt"
    assert copied.read_bytes() == b"from a node\n"
    assert copied.stat().st_uid == dst.uid
    assert not (hub.runtime_root / dst.project_id / "job.json").exists()
    assert job_id(hub, src) == src_job
    # The copy's sandboxes end with it.
    assert processes_of(dst.uid) == []
    # The target's quota is checked first; paths stay inside the homes.
    with pytest.raises(QuotaExceeded):
        await hub.copy_path(src, "big.bin", dst, "big.bin", **COPY_OPTIONS)  # type: ignore[arg-type]
    assert not (hub.projects_root / dst.project_id / "big.bin").exists()
    with pytest.raises(RuntimeFailure, match="contained"):
        await hub.copy_path(src, "../x", dst, "y", **COPY_OPTIONS)  # type: ignore[arg-type]
    # A running target sees the copy at once, through its agent on its node.
    await hub.start(dst)
    await hub.copy_path(src, "notes/a.txt", dst, "again.txt", **COPY_OPTIONS)  # type: ignore[arg-type]
    assert await hub.read_file(dst, "again.txt", 100) == b"from a node\n"
