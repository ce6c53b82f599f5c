"""Exec latency through the network channel (TLS to a project's relay, as the Slurm runtime
reaches projects on cluster nodes) against the local agent's Unix socket.

    sudo .venv/bin/python bench/network_exec.py [--calls 200]

Both projects run in the same bubblewrap sandbox on this machine, started in this run: one
by LocalRuntime, one behind the relay a cluster job would run (started here directly,
listening on loopback). The difference is the channel: TLS over TCP on a kept connection
(the handshake with the pinned certificate and the token are paid once, in the warm-up) and
the relay's hop to the agent's socket. Needs root and bubblewrap, like sandboxed projects
themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from calchub.runtime import ExecRequest, LocalRuntime, ProjectSpec, Quota, channel
from calchub.runtime import sandbox as sandbox_cmd
from calchub.runtime.slurm import SlurmRuntime

LOCAL_UID, NETWORK_UID = 64988, 64989
MB = 1024 * 1024


def summary(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


async def timed(calls: int, action: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(10):  # warm the agent's workers
        await action()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


def start_relay(rt: SlurmRuntime, spec: ProjectSpec) -> tuple[subprocess.Popen[bytes], Path]:
    """What the cluster job runs, without the cluster."""
    rt._prepare_roots()
    rundir = rt.runtime_root / spec.project_id
    rundir.mkdir(mode=0o700)
    nonce = secrets.token_hex(16)
    (rundir / "relay.json").write_text(
        json.dumps(rt.relay_config(spec, rt._prepare_home(spec), nonce))
    )
    (rundir / "job.json").write_text(
        json.dumps({"job_id": "0", "nonce": nonce, "started_at": "2026-01-01T00:00:00+00:00"})
    )
    assert rt._agent_home is not None
    launcher = rt._agent_home / sandbox_cmd.AGENT_LAUNCHER
    proc = subprocess.Popen(
        [sandbox_cmd.SYSTEM_PYTHON, "-I", str(launcher), "relay", str(rundir / "relay.json")]
    )
    return proc, rundir / "address.json"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    check = sandbox_cmd.check_host()
    if not check.available:
        print(f"cannot benchmark sandboxed projects here: {check.reason}", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="/tmp/chbn"))
    os.chmod(base, 0o711)  # noqa: S103 - project uids reach their homes through it
    local = LocalRuntime(base / "lp", base / "lr")
    remote = SlurmRuntime(
        base / "np", base / "nr", hub_address="127.0.0.1", node_socket_root=base / "ns"
    )
    local_spec = ProjectSpec("bench-local-channel", LOCAL_UID, Quota())
    remote_spec = ProjectSpec("bench-network-channel", NETWORK_UID, Quota())
    relay, address = start_relay(remote, remote_spec)
    try:
        await local.start(local_spec)
        while not address.exists():
            if relay.poll() is not None:
                print("the relay did not start", file=sys.stderr)
                return 1
            await asyncio.sleep(0.05)
        echo = ExecRequest("echo", ["hi"], "", 10, None, False)
        by_socket = await timed(args.calls, lambda: local.exec(local_spec, echo))
        by_network = await timed(args.calls, lambda: remote.exec(remote_spec, echo))
        ping = {"op": "ping"}
        sock = str(local.runtime_root / local_spec.project_id / "sock")
        endpoint = await remote._endpoint(remote_spec)
        ping_socket = await timed(args.calls, lambda: channel.call(sock, ping, wait_s=10))
        ping_network = await timed(args.calls, lambda: channel.call(endpoint, ping, wait_s=10))
        data = os.urandom(MB)
        await local.write_file(local_spec, "b.bin", data)
        await remote.write_file(remote_spec, "b.bin", data)
        read_socket = await timed(20, lambda: local.read_file(local_spec, "b.bin", MB))
        read_network = await timed(20, lambda: remote.read_file(remote_spec, "b.bin", MB))
        print(f"{args.calls} sequential calls each (machine shared with other work)")
        for name, sock_samples, net_samples in (
            ("exec `echo hi`", by_socket, by_network),
            ("ping (channel only)", ping_socket, ping_network),
            ("read 1 MB", read_socket, read_network),
        ):
            s50, s95 = summary(sock_samples)
            n50, n95 = summary(net_samples)
            print(
                f"  {name:<20} unix socket p50 {s50:6.2f} ms p95 {s95:6.2f} ms   "
                f"network p50 {n50:6.2f} ms p95 {n95:6.2f} ms   ratio {n50 / s50:4.1f}x"
            )
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait()
        await local.stop(local_spec.project_id)
        await local.close()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
