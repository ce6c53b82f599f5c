"""Networked projects get their own network namespace with outbound NAT (pasta): they reach
other machines, but never the host's loopback, the host's own addresses or denied ranges.
A peer machine is a network namespace made here, joined to the host by a veth pair."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import pytest_asyncio

from calchub.runtime import LocalRuntime, NetworkRules, Quota, SandboxUnavailable, procfs
from calchub.runtime.network import host_addresses
from tests.runtime.conftest import Projects, Shell

PORT = 8765
MARK = b"reached\n"
# Tries each host:port, prints "host:port ok" or "host:port <error>", one a line.
PROBE = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            data = s.recv(64)
        print(target, "ok" if data == b"reached\\n" else "other")
    except OSError as exc:
        print(target, type(exc).__name__)
"""
SERVE = f"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT}))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall({MARK!r})
    c.close()
"""


@dataclass(frozen=True)
class Peer:
    host_side: str  # the host's address on the link (one of its own addresses)
    allowed: str  # the peer's address projects may reach
    denied: str  # another address of the peer, in the denied ranges of the test


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def peer() -> Iterator[Peer]:
    tag = uuid.uuid4().hex[:8]
    ns, link = f"calchub-t-{tag}", f"cht{tag}"
    base = random.randrange(0, 256, 8)  # a /29 of TEST-NET-2 (198.51.100.0/24)
    net = "198.51.100."
    peer = Peer(f"{net}{base + 1}", f"{net}{base + 2}", f"{net}{base + 3}")
    server = None
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("addr", "add", f"{peer.host_side}/29", "dev", link)
        _ip("link", "set", link, "up")
        for address in (peer.allowed, peer.denied):
            _ip("-n", ns, "addr", "add", f"{address}/29", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SERVE],
            stdout=subprocess.PIPE,
        )
        assert server.stdout is not None
        assert server.stdout.readline() == b"ready\n"
        yield peer
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest_asyncio.fixture
async def host_listeners() -> AsyncIterator[int]:
    """A listener on every host address (0.0.0.0, so also its loopback); its port."""

    async def greet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(MARK)
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "0.0.0.0", 0)  # noqa: S104
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _results(stdout: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in stdout.splitlines())


async def test_networked_project_reaches_out_but_not_the_host(
    runtime: LocalRuntime, projects: Projects, sh: Shell, peer: Peer, host_listeners: int
) -> None:
    outside = f"{peer.allowed}:{PORT}"
    denied = f"{peer.denied}:{PORT}"
    on_host = [f"127.0.0.1:{host_listeners}"]
    on_host += [f"{a}:{host_listeners}" for a in host_addresses() if not a.startswith("127.")]
    assert f"{peer.host_side}:{host_listeners}" in on_host
    targets = [outside, denied, *on_host]
    probe = f"python3 -c '{PROBE}' " + " ".join(targets)

    # The host reaches every one of them, so each refusal below is the sandbox's doing.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBE, *targets, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert set(_results(out.decode()).values()) == {"ok"}, out

    rules = NetworkRules(deny=(*NetworkRules().deny, f"{peer.denied}/32"))
    spec = replace(projects.spec(runtime, Quota(network=True)), network_rules=rules)
    await runtime.start(spec)
    pasta = int((runtime.runtime_root / spec.project_id / "pasta.pid").read_text())
    result = await sh(spec, probe, timeout=60)
    assert result.exit_code == 0, result.stderr
    seen = _results(result.stdout)
    assert seen[outside] == "ok", seen
    assert seen[denied] != "ok", seen
    for target in on_host:
        assert seen[target] != "ok", (target, seen)
    # The project has no say over its namespace's routes.
    tamper = await sh(spec, f"/usr/sbin/ip route del prohibit {peer.denied}/32")
    assert tamper.exit_code != 0
    assert "Operation not permitted" in tamper.stderr, tamper.stderr
    assert seen == _results((await sh(spec, probe, timeout=60)).stdout)
    await runtime.stop(spec.project_id)
    # Its pasta ended with it, and was reaped by this hub, its subreaper.
    assert _ended(pasta)
    assert procfs.parent(pasta) != os.getpid()

    # Without network, nothing at all.
    spec = projects.spec(runtime)
    await runtime.start(spec)
    result = await sh(spec, probe, timeout=60)
    assert result.exit_code == 0, result.stderr
    seen = _results(result.stdout)
    assert set(seen) == set(targets)
    assert "ok" not in seen.values(), seen


def _ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


async def test_allowed_range_inside_a_denied_one(
    runtime: LocalRuntime, projects: Projects, sh: Shell, peer: Peer
) -> None:
    # The peer's whole link is denied, but one address allowed: the most specific wins.
    rules = NetworkRules(deny=(f"{peer.allowed}/29",), allow=(f"{peer.allowed}/32",))
    spec = replace(projects.spec(runtime, Quota(network=True)), network_rules=rules)
    await runtime.start(spec)
    targets = [f"{peer.allowed}:{PORT}", f"{peer.denied}:{PORT}"]
    result = await sh(spec, f"python3 -c '{PROBE}' " + " ".join(targets), timeout=60)
    assert result.exit_code == 0, result.stderr
    seen = _results(result.stdout)
    assert seen[targets[0]] == "ok", seen
    assert seen[targets[1]] not in ("ok", "other"), seen


async def test_without_pasta_a_networked_start_says_why(
    runtime: LocalRuntime, projects: Projects, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert runtime.network_problem() is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no pasta on it
    problem = runtime.network_problem()
    assert problem is not None and "apt-get install passt" in problem
    spec = projects.spec(runtime, Quota(network=True))
    with pytest.raises(SandboxUnavailable, match="pasta is not installed"):
        await runtime.start(spec)
    status = await runtime.status(spec.project_id)
    assert not status.running
    assert not (runtime.runtime_root / ".homes" / spec.project_id).exists()
