"""A site switched to the Slurm runtime: two `calchub serve` hubs on one database and one
cluster (the `cluster` fixture), driven through the HTTP API."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from calchub.db.tables import agent_addresses, projects
from calchub.projects.agent_addresses import AgentAddressStore
from calchub.runtime.slurm import SlurmRuntime
from tests.harness import ApiClient, Database, Loop, Server, throwaway_database
from tests.runtime.slurm_cluster import SlurmCluster
from tests.scratch import scratch_folder

WAIT_S = 90.0  # an upper bound for what the cluster notices, never a measurement


@dataclass
class Site:
    hubs: list[Server]
    clients: list[ApiClient]
    db: Database
    runtime_root: Path
    admin_key: str
    project_ids: list[str]


@pytest.fixture(scope="module")
def site(
    cluster: SlurmCluster, tmp_path_factory: pytest.TempPathFactory, loop: Loop
) -> Iterator[Site]:
    shared = scratch_folder("y")
    shared.chmod(0o711)  # project uids reach their homes through it
    settings = {
        "CALCHUB_RUNTIME": "slurm",
        "CALCHUB_PROJECTS_ROOT": str(shared / "p"),
        "CALCHUB_RUNTIME_ROOT": str(shared / "r"),
        "CALCHUB_SLURM_HUB_ADDRESS": cluster.controller_address,
        "CALCHUB_SLURM_NODE_SOCKETS": str(shared / "s"),
        "SLURM_CONF": str(cluster.conf),
    }
    with throwaway_database(tmp_path_factory.mktemp("db") / "calchub.db", loop) as url:
        hubs = [Server(tmp_path_factory.mktemp("hub"), url, None) for _ in range(2)]
        clients: list[ApiClient] = []
        project_ids: list[str] = []
        db = Database(url, loop)
        try:
            for hub in hubs:
                hub.env.update(settings)
            admin_key = hubs[0].start()
            assert admin_key
            hubs[1].start()
            clients = [ApiClient(hub.url) for hub in hubs]
            yield Site(hubs, clients, db, shared / "r", admin_key, project_ids)
        finally:
            # Projects outlive their hubs (as on a real site): end their jobs.
            runtime = SlurmRuntime(
                shared / "p",
                shared / "r",
                hub_address=cluster.controller_address,
                slurm_conf=str(cluster.conf),
            )
            for project_id in project_ids:
                loop.run(runtime.stop(project_id))
            for client in clients:
                client.close()
            for hub in hubs:
                hub.stop()
            db.close()


def make_project(site: Site) -> tuple[str, str]:
    """A new account's API key and a project of its."""
    api = site.clients[0]
    tag = time.monotonic_ns()
    reply = api.call(
        "create_account",
        site.admin_key,
        {
            "first_name": "Slurm",
            "last_name": "User",
            "email_address": f"slurm-{tag}@example.com",
            "password": "correct horse",
            "agreed_to_terms": True,
            "get_api_key": True,
        },
    )
    assert reply.event == "account_created", reply.body
    key = str(reply["api_key"])
    reply = api.call("create_project", key, {"title": "On the cluster"})
    assert reply.event == "project_created", reply.body
    site.project_ids.append(str(reply["project_id"]))
    return key, str(reply["project_id"])


def run(api: ApiClient, key: str, project_id: str, script: str) -> Any:
    return api.call(
        "project_exec",
        key,
        {"project_id": project_id, "command": script, "bash": True, "timeout": 20},
    )


def state_of(site: Site, project_id: str) -> tuple[str, str | None]:
    row = site.db.execute(
        select(projects.c.run_state, projects.c.run_state_error).where(
            projects.c.project_id == project_id
        )
    )[0]
    return str(row.run_state), row.run_state_error


def node_of(site: Site, project_id: str) -> str:
    return str(json.loads((site.runtime_root / project_id / "address.json").read_text())["host"])


def test_both_hubs_serve_a_project_on_the_cluster(site: Site, cluster: SlurmCluster) -> None:
    key, project_id = make_project(site)
    first = run(site.clients[0], key, project_id, "echo hello > greeting.txt; id -u")
    assert first.event == "project_exec_output", first.body
    assert node_of(site, project_id) in {node.address for node in cluster.nodes}
    # The other hub reaches the same running project, with the same files.
    second = run(site.clients[1], key, project_id, "cat greeting.txt; id -u")
    assert second["stdout"] == "hello\n" + first["stdout"]
    assert state_of(site, project_id) == ("running", None)
    # A stop request, carried out by whichever hub's scheduler claims it, ends the job.
    job = json.loads((site.runtime_root / project_id / "job.json").read_text())["job_id"]
    site.db.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(action_request={"action": "stop"}, action_state="pending")
    )
    deadline = time.monotonic() + WAIT_S
    while state_of(site, project_id)[0] != "opened":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "JobState=CANCELLED" in cluster.scontrol("-o", "show", "job", job)


def test_a_dead_node_is_reported_and_the_project_moves(site: Site, cluster: SlurmCluster) -> None:
    key, project_id = make_project(site)
    assert run(site.clients[0], key, project_id, "true").event == "project_exec_output"
    node = next(n for n in cluster.nodes if n.address == node_of(site, project_id))
    try:
        cluster.kill_node(node)
        # The hubs' schedulers notice once the controller gives up on the node.
        deadline = time.monotonic() + WAIT_S
        while (found := state_of(site, project_id))[0] == "running":
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        state, error = found
        assert state == "opened"
        assert error is not None and "NODE_FAIL" in error
        # Used again, it starts on a node that is up.
        again = run(site.clients[1], key, project_id, "echo back")
        assert again["stdout"] == "back\n", again.body
        assert node_of(site, project_id) != node.address
        assert state_of(site, project_id) == ("running", None)
    finally:
        cluster.start_node(node)
        cluster.wait_idle()


def recorded_address(site: Site, project_id: str) -> dict[str, Any] | None:
    rows = site.db.execute(
        select(agent_addresses).where(agent_addresses.c.project_id == project_id)
    )
    return dict(rows[0]._mapping) if rows else None


def test_hubs_reach_a_project_through_its_recorded_address(
    site: Site, cluster: SlurmCluster
) -> None:
    key, project_id = make_project(site)
    assert run(site.clients[0], key, project_id, "echo kept > f").event == "project_exec_output"
    rundir = site.runtime_root / project_id
    job = json.loads((rundir / "job.json").read_text())
    published = json.loads((rundir / "address.json").read_text())
    # The starting hub recorded what the relay published; no token is among it.
    recorded = recorded_address(site, project_id)
    assert recorded is not None
    assert {k: recorded[k] for k in ("job_id", "nonce", "host", "port", "fingerprint")} == {
        "job_id": job["job_id"],
        "nonce": job["nonce"],
        "host": published["host"],
        "port": published["port"],
        "fingerprint": published["fingerprint"],
    }
    # The other hub, which never saw this start, reaches the agent from the record alone.
    (rundir / "address.json").unlink()
    second = run(site.clients[1], key, project_id, "cat f")
    assert second["stdout"] == "kept\n", second.body
    assert json.loads((rundir / "job.json").read_text())["job_id"] == job["job_id"]

    # The job ends behind the hubs' backs: its record is stale.
    subprocess.run(["scancel", job["job_id"]], env=cluster.env, check=True)
    deadline = time.monotonic() + WAIT_S
    while any(
        f"JobState={state}" in cluster.scontrol("-o", "show", "job", job["job_id"])
        for state in ("PENDING", "RUNNING", "COMPLETING")
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # As a hub would find it that recorded the start and never saw it end.
    site.db.execute(agent_addresses.delete().where(agent_addresses.c.project_id == project_id))
    site.db.execute(insert(agent_addresses).values(**recorded))
    hub = SlurmRuntime(
        site.runtime_root.parent / "p",
        site.runtime_root,
        hub_address=cluster.controller_address,
        slurm_conf=str(cluster.conf),
        addresses=AgentAddressStore(site.db.engine),
    )
    status = site.db.loop.run(hub.status(project_id))
    assert not status.running
    assert status.reason is not None and "CANCELLED" in status.reason
    assert recorded_address(site, project_id) is None
    # Used again, it starts a new job, whose address replaces the record.
    again = run(site.clients[1], key, project_id, "cat f")
    assert again["stdout"] == "kept\n", again.body
    restarted = json.loads((rundir / "job.json").read_text())
    assert restarted["job_id"] != job["job_id"]
    now = recorded_address(site, project_id)
    assert now is not None and now["nonce"] == restarted["nonce"] != job["nonce"]

    # A stop (what a hub's scheduler does for a stop request) removes the record.
    site.db.loop.run(hub.stop(project_id))
    assert recorded_address(site, project_id) is None


def test_copies_between_projects_on_the_cluster(site: Site) -> None:
    key, src = make_project(site)
    reply = site.clients[0].call("create_project", key, {"title": "Target"})
    dst = str(reply["project_id"])
    site.project_ids.append(dst)
    assert run(site.clients[0], key, src, "mkdir d; echo copied > d/x").event == (
        "project_exec_output"
    )
    done = site.clients[1].call(
        "copy_path_between_projects",
        key,
        {"src_project_id": src, "src_path": "d", "target_project_id": dst, "target_path": "e"},
    )
    assert done.event == "success", done.body
    assert run(site.clients[0], key, dst, "cat e/x")["stdout"] == "copied\n"
