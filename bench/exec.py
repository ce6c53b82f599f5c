"""What running a command in a project costs, against its baselines in the same run.

    sudo .venv/bin/python bench/exec.py [--calls 300] [--starts 15] [--wakes 10]
    sudo .venv/bin/python bench/exec.py --database-url postgresql://postgres@127.0.0.1/bench

One real `calchub serve` (SQLite in a temporary data folder; with `--database-url` a second
one on that database, which must be empty) and one project on each. The servers let a project's
agent rest after QUIET_AFTER_S without requests instead of 30 s, so that the figures that need
a resting agent take seconds; what rest costs and saves does not depend on when it comes, and
the other figures never leave the project quiet that long. Four figures:

1. `project_exec echo hi` on a running project, sequential on one keep-alive connection,
   against the sum of its two floors measured here: an authenticated `ping` on the same
   connection and a bare `subprocess.run(["echo", "hi"])` in this process.
2. A stopped project's first exec: `projects/stop`, then `project_exec echo hi` timed until
   its answer. Against a fresh bubblewrap sandbox that runs `python3 -I -c pass` (the floor
   of starting a sandboxed interpreter) and against a warm exec.
3. The memory of the idle running project: RSS, PSS and USS summed over every process the
   project costs (the tree of the process state.json names, anything else in its cgroups, a
   bubblewrap monitor above it if one is left, its pasta if it has one), against one idle
   `python3 -I` on the host.
4. The first exec after the agent has gone to rest (it imports the agent again and forks a
   worker), against the warm exec of figure 1.

Needs root and bubblewrap, like the server's projects. The goals quoted are those of the
performance table in docs/architecture.md; the machine may be shared, so read the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calchub.runtime import procfs
from calchub.runtime import sandbox as sandbox_cmd
from calchub.runtime.install import install_agent
from ping import ServerProcess, project_server, remove_project_server_folders

ECHO: dict[str, object] = {"command": "echo", "args": ["hi"]}
QUIET_AFTER_S = 2.0  # the servers' --project-quiet-after (see agent/rest.py)
REST_WAIT_S = 60.0  # how long the agent may take to rest, on a loaded machine
# How long the project must stay one process, its agent's interpreter the rest's, to count as
# resting: a pool woken from rest keeps that command line, and may be alone for a moment
# between retiring its workers and forking new ones.
REST_HELD_S = 1.5


@dataclass
class Figures:
    label: str
    ping: float
    exec_: float
    bare: float
    cpu_ping: float
    cpu_exec: float
    cold: list[float]
    floor: float
    memory: dict[str, int]
    interpreter: dict[str, int]
    wakes: list[float]


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


def timed(calls: int, action: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def post(client: httpx.Client, path: str, body: dict[str, object]) -> dict[str, object]:
    reply = client.post(path, json=body)
    found: dict[str, object] = reply.json()
    if reply.status_code != 200 or found.get("event") == "error" or "error" in found:
        raise RuntimeError(f"{path} failed: {reply.status_code} {found}")
    return found


def cpu_per_call(server: ServerProcess, calls: int, action: Callable[[], object]) -> float:
    """The hub process's CPU time (user + system) per call in ms: what the load on the
    machine changes least."""
    fields = Path(f"/proc/{server.process.pid}/stat")

    def cpu() -> float:
        stat = fields.read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    before = cpu()
    for _ in range(calls):
        action()
    return (cpu() - before) / calls * 1000


def memory_of(pids: list[int]) -> dict[str, int]:
    """RSS, PSS and USS in bytes, summed over `pids` (from smaps_rollup)."""
    total = {"rss": 0, "pss": 0, "uss": 0, "processes": 0}
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = {}
        for line in text.splitlines()[1:]:
            name, value, *_ = line.split()
            fields[name.rstrip(":")] = int(value) * 1024
        total["rss"] += fields.get("Rss", 0)
        total["pss"] += fields.get("Pss", 0)
        total["uss"] += fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
        total["processes"] += 1
    return total


def project_pids(runtime_root: Path, project_id: str) -> list[int]:
    """Every process the running project costs: the tree of the process state.json names,
    what else is in the project's cgroups, a bubblewrap monitor above that process if one
    is there, and the project's pasta if it has network."""
    rundir = runtime_root / project_id
    recorded = int(json.loads((rundir / "state.json").read_text())["pid"])
    found = set(procfs.tree(recorded))
    for procs in Path("/sys/fs/cgroup").glob(f"*/calchub/{project_id}/cgroup.procs"):
        with contextlib.suppress(OSError):
            found.update(int(pid) for pid in procs.read_text().split())
    above = procfs.parent(recorded)
    with contextlib.suppress(OSError):
        if above and Path(f"/proc/{above}/comm").read_text().strip() == "bwrap":
            found.add(above)
    with contextlib.suppress(OSError, ValueError):
        found.add(int((rundir / "pasta.pid").read_text()))
    return sorted(found)


def wait_resting(runtime_root: Path, project_id: str) -> None:
    """Until the project has been one process, its agent at rest (agent/rest.py), for
    REST_HELD_S."""
    deadline = time.monotonic() + REST_WAIT_S
    since = None
    while True:
        pids = project_pids(runtime_root, project_id)
        alone = False
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pids[0]}/cmdline").read_bytes()
            alone = len(pids) == 1 and b"rest_main" in command
        now = time.monotonic()
        since = (since or now) if alone else None
        if since is not None and now - since >= REST_HELD_S:
            return
        if now > deadline:
            raise RuntimeError(f"the project did not rest within {REST_WAIT_S:g} s: {pids}")
        time.sleep(0.05)


def measure(
    label: str, server: ServerProcess, runtime_root: Path, args: argparse.Namespace
) -> Figures:
    server.wait_ready()
    key = server.printed_key
    if not key:
        raise RuntimeError(f"{label}: calchub printed no admin key (use an empty database)")
    with httpx.Client(base_url=server.url, auth=(key, ""), timeout=120) as client:
        project = str(post(client, "/api/v1/create_project", {"title": "bench"})["project_id"])
        body: dict[str, object] = {"project_id": project, **ECHO}
        for _ in range(20):  # starts the project, warms both paths
            post(client, "/api/v1/project_exec", body)
            post(client, "/api/v1/ping", {})
        # Interleaved, so that the floors and the exec see the same load on the machine.
        ping, execs, bare = [], [], []
        for _ in range(args.calls):
            ping += timed(1, lambda: post(client, "/api/v1/ping", {}))
            execs += timed(1, lambda: post(client, "/api/v1/project_exec", body))
            bare += timed(1, run_echo)
        cpu_ping = cpu_per_call(server, args.calls, lambda: post(client, "/api/v1/ping", {}))
        cpu_exec = cpu_per_call(
            server, args.calls, lambda: post(client, "/api/v1/project_exec", body)
        )
        wait_resting(runtime_root, project)
        memory = memory_of(project_pids(runtime_root, project))
        interpreter = idle_interpreter()
        wakes = []
        for _ in range(args.wakes):
            wait_resting(runtime_root, project)
            wakes += timed(1, lambda: post(client, "/api/v1/project_exec", body))
        cold, floor = [], []
        with fresh_sandbox() as argv:
            for _ in range(args.starts):
                post(client, "/api/v2/projects/stop", {"project_id": project})
                cold += timed(1, lambda: post(client, "/api/v1/project_exec", body))
                floor += timed(1, lambda: subprocess.run(argv, check=True, cwd="/"))
    print(
        f"{label}: ping p50 {p50(ping):.2f} ms p95 {p95(ping):.2f}; "
        f"exec p50 {p50(execs):.2f} ms p95 {p95(execs):.2f}"
    )
    return Figures(
        label,
        p50(ping),
        p50(execs),
        p50(bare),
        cpu_ping,
        cpu_exec,
        cold,
        p50(floor),
        memory,
        interpreter,
        wakes,
    )


def run_echo() -> None:
    subprocess.run(["echo", "hi"], stdout=subprocess.DEVNULL, check=True)


@contextlib.contextmanager
def fresh_sandbox() -> Iterator[list[str]]:
    """A fresh sandbox running the system interpreter, as a project's start does."""
    runtime_root = Path(tempfile.mkdtemp(prefix="/tmp/chbf-"))
    home = Path(tempfile.mkdtemp(prefix="/tmp/chbh-"))
    try:
        for folder in (runtime_root, home):
            folder.chmod(0o711)
        yield sandbox_cmd.bwrap_argv(
            uid=64991,
            project_id="bench-floor",
            home=home,
            agent_home=install_agent(runtime_root),
            network=False,
            allow_user_namespaces=True,
            command=[sandbox_cmd.SYSTEM_PYTHON, "-I", "-c", "pass"],
            tmp_bytes=16 * 1024 * 1024,
        )
    finally:
        shutil.rmtree(runtime_root, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def idle_interpreter() -> dict[str, int]:
    proc = subprocess.Popen(
        [sandbox_cmd.SYSTEM_PYTHON, "-I", "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        time.sleep(1.5)  # its start done even on a loaded machine
        return memory_of([proc.pid])
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()


def mb(value: int) -> str:
    return f"{value / 1e6:5.1f} MB"


def report(figures: Figures) -> None:
    bare, floor, interpreter = figures.bare, figures.floor, figures.interpreter
    base = figures.ping + bare
    print(f"\n== {figures.label} (figures taken on a possibly loaded machine; read the ratios)")
    print(
        f"1. exec echo hi p50 {figures.exec_:.2f} ms vs ping {figures.ping:.2f} + bare "
        f"subprocess.run {bare:.2f} = {base:.2f} ms: {figures.exec_ / base:.2f}x (goal <= 1.5x)"
    )
    print(
        f"   hub CPU per call: ping {figures.cpu_ping:.2f} ms, exec {figures.cpu_exec:.2f} ms "
        f"({figures.cpu_exec / figures.cpu_ping:.2f}x)"
    )
    cold = p50(figures.cold)
    print(
        f"2. stopped -> first exec p50 {cold:.1f} ms p95 {p95(figures.cold):.1f} "
        f"(goal p50 <= 60 ms); fresh bwrap + python3 -I -c pass p50 {floor:.1f} ms: "
        f"{cold / floor:.2f}x; warm exec: {cold / figures.exec_:.1f}x"
    )
    memory = figures.memory
    print(
        f"3. idle project, {memory['processes']} processes: RSS {mb(memory['rss'])}, "
        f"PSS {mb(memory['pss'])}, USS {mb(memory['uss'])} (goal RSS <= 10 MB); one idle "
        f"python3 -I: RSS {mb(interpreter['rss'])}: {memory['rss'] / interpreter['rss']:.2f}x"
    )
    if figures.wakes:
        wake = p50(figures.wakes)
        print(
            f"4. first exec after rest p50 {wake:.1f} ms p95 {p95(figures.wakes):.1f} "
            f"({len(figures.wakes)} wakes); warm exec {figures.exec_:.2f} ms: "
            f"{wake / figures.exec_:.1f}x, +{wake - figures.exec_:.1f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--starts", type=int, default=15)
    parser.add_argument("--wakes", type=int, default=10, help="first execs after rest")
    parser.add_argument("--database-url", default="", help="also measure on this (empty) database")
    args = parser.parse_args()
    check = sandbox_cmd.check_host()
    if not check.available:
        print(f"cannot run sandboxed projects here: {check.reason}", file=sys.stderr)
        return 2
    runs: list[tuple[str, tuple[str, ...]]] = [("sqlite", ())]
    if args.database_url:
        runs.append(("postgresql", ("--database-url", args.database_url)))
    results = []
    for label, serve_args in runs:
        quiet = ("--project-quiet-after", str(QUIET_AFTER_S))
        server, folders = project_server(*quiet, *serve_args)
        try:
            results.append(measure(label, server, folders[2], args))
        finally:
            server.stop()
            remove_project_server_folders(folders)
    for figures in results:
        report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
