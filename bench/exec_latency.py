"""Exec latency and file throughput of LocalRuntime, against what it replaces.

    sudo .venv/bin/python bench/exec_latency.py [--calls 200] [--files 50]

Exec: `echo hi` through a running project's agent, against a bare subprocess.run (no
sandbox at all) and a fresh bubblewrap sandbox per call (what running each command in its
own sandbox would cost). Files: 1 MB writes and reads through the agent, against plain
file I/O on the host. Needs root and bubblewrap, like sandboxed projects themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from calchub.runtime import ExecRequest, LocalRuntime, ProjectSpec, Quota
from calchub.runtime import sandbox as sandbox_cmd
from calchub.runtime.install import install_agent

UID = 64990
MB = 1024 * 1024


def summary(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


async def time_async(calls: int, action: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


def time_sync(calls: int, action: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def fresh_sandbox_argv(rt: LocalRuntime, spec: ProjectSpec) -> list[str]:
    return sandbox_cmd.bwrap_argv(
        uid=spec.uid,
        project_id=spec.project_id,
        home=rt.projects_root / spec.project_id,
        agent_home=install_agent(rt.runtime_root),
        network=False,
        allow_user_namespaces=True,
        command=["/usr/bin/echo", "hi"],
        tmp_bytes=16 * MB,
    )


def report(name: str, samples: list[float], base: float) -> None:
    p50, p95 = summary(samples)
    print(f"  {name:<28} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   p50 ratio {p50 / base:6.1f}x")


async def bench_exec(rt: LocalRuntime, spec: ProjectSpec, calls: int) -> None:
    echo = ExecRequest("echo", ["hi"], "", 10, None, False)
    for _ in range(10):  # warm the agent's workers
        await rt.exec(spec, echo)
    agent = await time_async(calls, lambda: rt.exec(spec, echo))
    bare = time_sync(
        calls, lambda: subprocess.run(["echo", "hi"], stdout=subprocess.DEVNULL, check=True)
    )
    argv = fresh_sandbox_argv(rt, spec)
    fresh = time_sync(
        calls, lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, cwd="/")
    )
    base = summary(bare)[0]
    print(f"exec `echo hi`, {calls} sequential calls each")
    report("bare subprocess.run", bare, base)
    report("LocalRuntime.exec (agent)", agent, base)
    report("fresh bwrap per call", fresh, base)
    print(f"  agent vs fresh sandbox: {summary(fresh)[0] / summary(agent)[0]:.1f}x faster (p50)")
    started = time.perf_counter()
    await asyncio.gather(*(rt.exec(spec, echo) for _ in range(64)))
    print(f"  64 concurrent execs: {(time.perf_counter() - started) * 1000:.0f} ms in total")


async def bench_files(rt: LocalRuntime, spec: ProjectSpec, count: int) -> None:
    data = os.urandom(MB)
    writes = await time_async(count, lambda: rt.write_file(spec, "bench.bin", data))
    reads = await time_async(count, lambda: rt.read_file(spec, "bench.bin", 2 * MB))
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "bench.bin"
        host_writes = time_sync(count, lambda: target.write_bytes(data))
        host_reads = time_sync(count, target.read_bytes)
    print(f"files, 1 MB each, {count} sequential calls each")
    for name, agent, host in (("write", writes, host_writes), ("read", reads, host_reads)):
        agent_rate = MB / statistics.median(agent) / MB
        host_rate = MB / statistics.median(host) / MB
        print(
            f"  {name:<6} agent {agent_rate:8.0f} MB/s ({summary(agent)[0]:6.2f} ms)   "
            f"host {host_rate:8.0f} MB/s ({summary(host)[0]:6.2f} ms)   "
            f"ratio {host_rate / agent_rate:5.1f}x"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--files", type=int, default=50)
    args = parser.parse_args()
    check = sandbox_cmd.check_host()
    if not check.available:
        print(f"cannot benchmark sandboxed projects here: {check.reason}", file=sys.stderr)
        return 2
    projects_root = Path(tempfile.mkdtemp(prefix="/tmp/chbp"))
    runtime_root = Path(tempfile.mkdtemp(prefix="/tmp/chbr"))
    for root in (projects_root, runtime_root):
        root.chmod(0o711)
    rt = LocalRuntime(projects_root, runtime_root)
    spec = ProjectSpec("bench-exec-latency", UID, Quota())
    try:
        started = time.perf_counter()
        await rt.start(spec)
        print(f"project start: {(time.perf_counter() - started) * 1000:.0f} ms")
        await bench_exec(rt, spec, args.calls)
        await bench_files(rt, spec, args.files)
    finally:
        await rt.stop(spec.project_id)
        await rt.close()
        shutil.rmtree(projects_root, ignore_errors=True)
        shutil.rmtree(runtime_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
