"""The network channel on one machine: the relay a cluster job runs, started here directly,
with a real sandbox behind it; the hub reaches it over TCP with TLS and the project's token."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from calchub.runtime import (
    ExecRequest,
    ProjectSpec,
    Quota,
    RuntimeFailure,
    channel,
    reaping,
    sandbox,
)
from calchub.runtime.slurm import SlurmRuntime
from tests.runtime.conftest import Projects, live_processes_of, processes_of, zombies_of
from tests.scratch import scratch_folder


@dataclass
class Relayed:
    runtime: SlurmRuntime
    spec: ProjectSpec
    proc: subprocess.Popen[bytes]
    endpoint: channel.NetworkEndpoint


def relay_runtime() -> SlurmRuntime:
    base = scratch_folder("n")
    base.chmod(0o711)  # project uids reach their homes through it
    return SlurmRuntime(
        base / "p", base / "r", hub_address="127.0.0.1", node_socket_root=base / "s"
    )


def launch_relay(launcher: Path, config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sandbox.SYSTEM_PYTHON, "-I", str(launcher), "relay", str(config)],
        stderr=subprocess.PIPE,
    )


async def start_relay(rt: SlurmRuntime, spec: ProjectSpec) -> Relayed:
    """What the cluster job does, without the cluster."""
    rt.check_available()
    rundir = rt.runtime_root / spec.project_id
    rundir.mkdir(mode=0o700)
    nonce = os.urandom(16).hex()
    config = rt.relay_config(spec, rt._prepare_home(spec), nonce)
    (rundir / "relay.json").write_text(json.dumps(config))
    assert rt._agent_home is not None
    proc = launch_relay(rt._agent_home / sandbox.AGENT_LAUNCHER, rundir / "relay.json")
    address = rundir / "address.json"
    while not address.exists():
        assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()
        await asyncio.sleep(0.05)
    published = json.loads(address.read_text())
    assert published["nonce"] == nonce
    endpoint = channel.NetworkEndpoint(
        published["host"],
        published["port"],
        published["fingerprint"],
        rt._token(spec.project_id, nonce),
    )
    return Relayed(rt, spec, proc, endpoint)


@pytest_asyncio.fixture
async def relayed(projects: Projects) -> AsyncIterator[Relayed]:
    rt = relay_runtime()
    spec = projects.spec(rt)
    running = await start_relay(rt, spec)
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
        running.proc.wait(timeout=30)
        if running.proc.stderr:
            running.proc.stderr.close()
        # A relay killed outright leaves its sandbox behind (on a node, Slurm ends the
        # job's processes); end it here so no test leaves a project running.
        _end_processes_of(spec.uid)


def _end_processes_of(uid: int) -> None:
    """Kill every process of `uid`, and reap those that are this process's children: a
    relay killed outright leaves bubblewrap's monitor to the subreaper above it, which is
    this test process once it has started a sandbox of its own."""
    pidfds = []
    for pid in [*live_processes_of(uid), *zombies_of(uid)]:
        if (pidfd := reaping.pin(pid)) is not None:
            pidfds.append(pidfd)
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    for pidfd in pidfds:
        reaping.reap_when_ended(pidfd)
        os.close(pidfd)


def exec_header(script: str) -> dict[str, object]:
    return {
        "op": "exec", "command": script, "args": [], "path": "", "timeout_s": 10,
        "max_output": None, "bash": True, "env": {},
    }  # fmt: skip


async def test_exec_and_files_through_the_relay(relayed: Relayed) -> None:
    reply, _ = await channel.call(relayed.endpoint, exec_header("id -u; pwd"), wait_s=30)
    assert reply["ok"], reply
    assert reply["stdout"] == f"{relayed.spec.uid}\n/projects/{relayed.spec.project_id}\n"
    data = b"over the network\n" * 1000
    write = {"op": "write", "path": "a.txt", "size": len(data), "quota_bytes": 10**9}
    reply, _ = await channel.call(relayed.endpoint, write, data, wait_s=30)
    assert reply["ok"], reply
    read = {"op": "read", "path": "a.txt", "max_bytes": 10**6}
    reply, got = await channel.call(relayed.endpoint, read, wait_s=30, max_payload=10**6)
    assert got == data
    # The file is in the project's home on the shared folder, owned by its uid.
    home = relayed.runtime.projects_root / relayed.spec.project_id
    assert (home / "a.txt").stat().st_uid == relayed.spec.uid


async def test_the_runtime_reaches_a_published_address(relayed: Relayed) -> None:
    rt, spec = relayed.runtime, relayed.spec
    # What a hub finds in the shared folder: the job's record; the relay's address.
    record = {"job_id": "0", "nonce": _nonce(relayed), "uid": spec.uid}
    job = rt.runtime_root / spec.project_id / "job.json"
    job.write_text(json.dumps({**record, "started_at": "2026-01-01T00:00:00+00:00"}))
    try:
        result = await rt.exec(spec, ExecRequest("echo $((6*7))", [], "", 10, None, True))
    finally:
        job.unlink()  # no cluster knows the job
    assert result.stdout == "42\n"


def _nonce(relayed: Relayed) -> str:
    published = json.loads(
        (relayed.runtime.runtime_root / relayed.spec.project_id / "address.json").read_text()
    )
    return str(published["nonce"])


async def test_a_wrong_token_reaches_nothing(relayed: Relayed) -> None:
    wrong = dataclasses.replace(relayed.endpoint, token=os.urandom(32))
    with pytest.raises(RuntimeFailure, match="closed the connection"):
        await channel.call(wrong, exec_header("touch pwned"), wait_s=30)
    home = relayed.runtime.projects_root / relayed.spec.project_id
    assert not (home / "pwned").exists()


async def test_an_unknown_certificate_is_refused(relayed: Relayed) -> None:
    impostor = dataclasses.replace(relayed.endpoint, fingerprint="00" * 32)
    with pytest.raises(RuntimeFailure, match="unknown certificate"):
        await channel.call(impostor, exec_header("true"), wait_s=30)


async def test_the_token_is_not_in_the_relay_config(relayed: Relayed) -> None:
    config = (relayed.runtime.runtime_root / relayed.spec.project_id / "relay.json").read_text()
    assert relayed.endpoint.token.hex() not in config
    assert relayed.endpoint.token.hex() not in repr(relayed.endpoint)
    mode = (relayed.runtime.runtime_root / ".hub.key").stat().st_mode & 0o777
    assert mode == 0o600


async def test_a_dead_relay_is_noticed(relayed: Relayed) -> None:
    relayed.proc.send_signal(signal.SIGKILL)
    relayed.proc.wait(timeout=30)
    with pytest.raises(channel.AgentUnreachable, match="does not answer"):
        await channel.call(relayed.endpoint, exec_header("true"), wait_s=30)


async def test_stopping_the_relay_ends_the_sandbox(relayed: Relayed) -> None:
    assert processes_of(relayed.spec.uid)
    relayed.proc.send_signal(signal.SIGTERM)
    assert relayed.proc.wait(timeout=30) == 143
    assert not processes_of(relayed.spec.uid)
    rundir = relayed.runtime.runtime_root / relayed.spec.project_id
    assert not (rundir / "address.json").exists()


async def test_an_idle_project_ends_its_relay(projects: Projects) -> None:
    rt = relay_runtime()
    spec = projects.spec(rt, Quota(idle_timeout_s=1))
    running = await start_relay(rt, spec)
    try:
        code = await asyncio.to_thread(running.proc.wait, 60)
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait()
    assert code == 0
    assert not processes_of(spec.uid)


async def test_a_networked_quota_gets_no_network_on_a_node(projects: Projects) -> None:
    rt = relay_runtime()
    spec = projects.spec(rt, Quota(network=True))
    running = await start_relay(rt, spec)
    try:
        reply, _ = await channel.call(
            running.endpoint,
            exec_header("awk -F: 'NR > 2 {print $1}' /proc/net/dev | tr -d ' '"),
            wait_s=30,
        )
    finally:
        running.proc.send_signal(signal.SIGTERM)
        running.proc.wait(timeout=30)
    assert reply["stdout"] == "lo\n"


async def test_calls_share_one_kept_connection(relayed: Relayed) -> None:
    ping = {"op": "ping"}
    await channel.call(relayed.endpoint, ping, wait_s=30)
    kept = channel._kept.here()._idle[relayed.endpoint]
    assert len(kept) == 1
    writer = kept[0][1][1]
    for _ in range(5):
        await channel.call(relayed.endpoint, ping, wait_s=30)
    kept = channel._kept.here()._idle[relayed.endpoint]
    assert [conn[1] for _, conn in kept] == [writer]
    # Calls at once each get a connection; all are kept for later, up to a bound.
    replies = await asyncio.gather(
        *(
            channel.call(relayed.endpoint, exec_header("echo $((1+1))"), wait_s=30)
            for _ in range(12)
        )
    )
    assert {reply["stdout"] for reply, _ in replies} == {"2\n"}
    assert len(channel._kept.here()._idle[relayed.endpoint]) == channel.KEEP_PER_ENDPOINT
    channel.close_kept()


async def test_a_hub_that_hangs_up_stops_the_command(relayed: Relayed) -> None:
    with pytest.raises(RuntimeFailure, match="Timed out"):
        await channel.call(
            relayed.endpoint, exec_header("echo $$ > sleeper.pid; exec sleep 600"), wait_s=3
        )
    home = relayed.runtime.projects_root / relayed.spec.project_id
    # The relay tells the agent, which kills the command nobody waits for.
    deadline = time.monotonic() + 60
    while any("sleep 600" in line for line in processes_of(relayed.spec.uid)):
        assert time.monotonic() < deadline, "the command outlived the hub's call"
        await asyncio.sleep(0.1)
    assert (home / "sleeper.pid").exists()
    # The connection is not reused after that, and the next call works.
    reply, _ = await channel.call(relayed.endpoint, exec_header("echo fine"), wait_s=30)
    assert reply["stdout"] == "fine\n"
