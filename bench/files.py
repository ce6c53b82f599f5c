"""Files: a 1 MB text write + read against Jupyter Server's contents API, and a copy of
2,000 files in 40 folders between projects against `cp -a` of the same tree.

    .venv/bin/python bench/files.py [--rounds 20] [--copies 5] [--database-url URL]

Starts, in this run, a real `calchub serve` (SQLite, temporary folders; needs root and
bubblewrap for its projects) and a Jupyter Server (`pip install -e '.[bench]'`) on 127.0.0.1,
each with a token or key of its own, and measures over HTTP on one keep-alive connection:

- write + read of 1 MB of text: calchub's `write_text_file_to_project` followed by
  `read_text_file_from_project`, against Jupyter Server's `PUT /api/contents/<path>`
  (type file, format text) followed by `GET` of the same file with its content;
- `copy_path_between_projects` of a tree of 40 folders with 50 files each (1-4 KB) into a
  fresh folder of another project, against `cp -a` of that same tree on the host (from the
  source project's home into a fresh folder on the same file system).

Prints p50/p95 of each and the ratios calchub/baseline; the goals are at most 0.5x for the
write + read and at most 2x for the copy. The write + read's bodies are encoded before timing
and its replies decoded with orjson, for both servers, so that the client's own JSON work
does not pull the ratio toward 1; beside it are printed the CPU ms per round of each
server's processes (calchub's hub and project sandbox, the Jupyter Server), from /proc.
`--project-disk none` keeps calchub's homes as plain folders, as Jupyter's is (the default
lets calchub choose disk images where it can).
`--database-url` runs calchub on that database (an empty throw-away one: calchub must print
its first admin key) instead of SQLite.
The two are measured in alternation, so load from elsewhere falls on both alike.
Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ping import HOST, ServerProcess, free_port, project_server, remove_project_server_folders

TEXT_BYTES = 1_000_000
FOLDERS, FILES_PER_FOLDER = 40, 50
WRITE_READ_GOAL, COPY_GOAL = 0.5, 2.0
# The tree, made inside the source project: sizes vary so that rsync and cp see real files.
MAKE_TREE = (
    f"mkdir tree && cd tree && for d in $(seq 1 {FOLDERS}); do mkdir d$d; "
    f"for f in $(seq 1 {FILES_PER_FOLDER}); do "
    "head -c $(( 1024 + (d * 131 + f * 71) % 3072 )) /dev/urandom > d$d/f$f.bin; done; done"
)


def text_of(size: int) -> str:
    line = "The quick brown fox jumps over the lazy dog 0123456789.\n"
    return (line * (size // len(line) + 1))[:size]


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in ms; p95 by nearest rank, so with few samples it is the largest (it
    was the smallest of two)."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[math.ceil(len(ordered) * 0.95) - 1] * 1000


def clock(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def v1(client: httpx.Client, event: str, body: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = client.post(f"/api/v1/{event}", json=body).json()
    if reply.get("event") == "error" or "error" in reply:
        raise RuntimeError(f"{event} failed: {reply.get('error')}")
    return reply


def json_reply(response: httpx.Response, what: str) -> dict[str, Any]:
    if not response.is_success:
        raise RuntimeError(f"{what} failed: HTTP {response.status_code} {response.text[:200]}")
    reply: dict[str, Any] = orjson.loads(response.content)
    if reply.get("event") == "error" or "error" in reply:
        raise RuntimeError(f"{what} failed: {reply.get('error')}")
    return reply


def jupyter_server(root: Path, token: str, atomic: bool) -> ServerProcess:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        "--allow-root",
        f"--FileContentsManager.use_atomic_writing={atomic}",
    ]
    server = ServerProcess("jupyter", command, port)
    deadline = time.monotonic() + 60
    while True:  # Jupyter says it listens in a line of its own wording: ask it instead
        try:
            status = httpx.get(f"{server.url}/api/status", params={"token": token}, timeout=2)
            if status.status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"Jupyter Server did not start:\n{''.join(server.lines)}")
        time.sleep(0.2)


# The client's own work is made the same, and small, for both servers: each request body is
# encoded once (orjson) before timing and sent as bytes, and replies are decoded with orjson.
# httpx's json= (stdlib json) would spend about 8 ms of the client's CPU per round on 1 MB
# each way, equal for both, which pulls the ratio toward 1 on a small machine.
JSON = {"content-type": "application/json"}


def jupyter_write_read(client: httpx.Client, text: str, put_body: bytes) -> None:
    json_reply(client.put("/api/contents/bench.txt", content=put_body, headers=JSON), "PUT")
    got = client.get(
        "/api/contents/bench.txt", params={"type": "file", "format": "text", "content": 1}
    )
    if json_reply(got, "GET")["content"] != text:
        raise RuntimeError("Jupyter Server read back something else")


def calchub_write_read(
    client: httpx.Client, text: str, write_body: bytes, read_body: bytes
) -> None:
    write = client.post("/api/v1/write_text_file_to_project", content=write_body, headers=JSON)
    json_reply(write, "write_text_file_to_project")
    read = client.post("/api/v1/read_text_file_from_project", content=read_body, headers=JSON)
    if json_reply(read, "read_text_file_from_project")["content"] != text:
        raise RuntimeError("calchub read back something else")


def children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(root: int, skip: frozenset[int] = frozenset()) -> float:
    """CPU time (user + system) of `root` and its descendants as they are now, each with
    its children that ended and were reaped (a retired agent worker's time is in its pool's
    figure), so the sum only grows even when processes come and go. Subtrees whose root is
    in `skip` are left out (a sandbox is a child of the hub that started it and is counted
    on its own). Read from /proc before and after each round, outside its timing."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            stack += [child for child in children(pid) if child not in skip]
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Side:
    """One server's rounds: wall-clock times, and the CPU time spent during its rounds by
    each of its process trees (`roots`: name -> pid) and by this client."""

    roots: dict[str, int]
    skip: frozenset[int] = frozenset()
    times: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    client_cpu: float = 0.0

    def round(self, work: Callable[[], Any]) -> None:
        before = {name: cpu_seconds(pid, self.skip) for name, pid in self.roots.items()}
        client = time.process_time()
        self.times.append(clock(work))
        self.client_cpu += time.process_time() - client
        for name, pid in self.roots.items():
            used = cpu_seconds(pid, self.skip) - before[name]
            self.cpu[name] = self.cpu.get(name, 0.0) + used

    def ms_per_round(self, seconds: float) -> float:
        return seconds / len(self.times) * 1000


def print_cpu(jupyter: Side, calchub: Side) -> None:
    """CPU ms per round: the servers' cost whatever the client and the machine's load."""
    servers = []
    for side in (jupyter, calchub):
        parts = {name: side.ms_per_round(seconds) for name, seconds in side.cpu.items()}
        servers.append(sum(parts.values()))
        shown = " + ".join(f"{name} {ms:.2f}" for name, ms in parts.items())
        client = side.ms_per_round(side.client_cpu)
        print(f"  CPU ms per round: {shown} (this client {client:.2f})")
    print(f"  calchub / Jupyter server CPU {servers[1] / servers[0]:.2f}x")


def cp_a(source: Path, scratch: Path, round_: int) -> float:
    target = scratch / f"copy{round_}"
    return clock(lambda: subprocess.run(["cp", "-a", str(source), str(target)], check=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="write + read rounds of each")
    parser.add_argument("--copies", type=int, default=5, help="copies of the tree of each")
    parser.add_argument(
        "--project-disk",
        choices=("auto", "image", "none"),
        default="auto",
        help="how calchub keeps homes (disk images or folders; Jupyter always uses a folder)",
    )
    parser.add_argument(
        "--jupyter-writes",
        choices=("atomic", "plain"),
        default="atomic",
        help="Jupyter's default (atomic: copies the old file aside, writes, fsyncs) or plain "
        "(writes the file in place, no fsync); calchub writes a new file and renames it",
    )
    parser.add_argument(
        "--database-url", default="", help="an empty throw-away database (default: SQLite)"
    )
    args = parser.parse_args()
    token = secrets.token_hex(16)
    jupyter_root = Path(tempfile.mkdtemp(prefix="calchub-bench-jupyter-"))
    scratch = Path(tempfile.mkdtemp(prefix="calchub-bench-cp-"))
    database = ["--database-url", args.database_url] if args.database_url else []
    server, folders = project_server("--project-disk", args.project_disk, *database)
    jupyter: ServerProcess | None = None
    try:
        jupyter = jupyter_server(jupyter_root, token, args.jupyter_writes == "atomic")
        server.wait_ready()
        key = server.printed_key
        assert key, "no admin key printed"
        text = text_of(TEXT_BYTES)
        with (
            httpx.Client(base_url=server.url, auth=(key, ""), timeout=300) as hub,
            httpx.Client(
                base_url=jupyter.url, headers={"Authorization": f"token {token}"}, timeout=300
            ) as jup,
        ):
            source = v1(hub, "create_project", {"title": "bench source"})["project_id"]
            target = v1(hub, "create_project", {"title": "bench target"})["project_id"]
            put_body = orjson.dumps({"type": "file", "format": "text", "content": text})
            file = {"project_id": source, "path": "bench.txt"}
            write_body = orjson.dumps({**file, "content": text})
            read_body = orjson.dumps(file)

            def on_jupyter() -> None:
                jupyter_write_read(jup, text, put_body)

            def on_calchub() -> None:
                calchub_write_read(hub, text, write_body, read_body)

            for _ in range(3):  # warm up both (and start the project)
                on_jupyter()
                on_calchub()
            state = json.loads((folders[2] / source / "state.json").read_text())
            sandbox = int(state["pid"])
            jupyter_side = Side({"Jupyter Server": jupyter.process.pid})
            calchub_side = Side(
                {"hub": server.process.pid, "sandbox": sandbox}, skip=frozenset({sandbox})
            )
            for _ in range(args.rounds):  # interleaved, so load from others hits both alike
                jupyter_side.round(on_jupyter)
                calchub_side.round(on_calchub)

            body = {"project_id": source, "command": MAKE_TREE, "bash": True, "timeout": 300}
            made = v1(hub, "project_exec", body)
            if made.get("exit_code"):
                raise RuntimeError(f"making the tree failed: {made.get('stderr')}")
            # The running project's home as the host sees it: its disk image's mount, or
            # its folder.
            mounted = folders[2] / ".homes" / source / "tree"
            tree = mounted if mounted.is_dir() else folders[1] / source / "tree"
            copy = {"src_project_id": source, "src_path": "tree", "target_project_id": target}
            v1(hub, "copy_path_between_projects", {**copy, "target_path": "warm"})
            cp_a(tree, scratch, -1)
            cp_times, copy_times = [], []
            for n in range(args.copies):
                cp_times.append(cp_a(tree, scratch, n))
                copy_times.append(
                    clock(
                        lambda n=n: v1(
                            hub, "copy_path_between_projects", {**copy, "target_path": f"c{n}"}
                        )
                    )
                )
            counted = v1(
                hub,
                "project_exec",
                {"project_id": target, "command": "find c0 -type f | wc -l", "bash": True},
            )
            if int(counted["stdout"]) != FOLDERS * FILES_PER_FOLDER:
                raise RuntimeError(f"the copy holds {counted['stdout'].strip()} files")
        j, c = percentiles(jupyter_side.times), percentiles(calchub_side.times)
        cp, cc = percentiles(cp_times), percentiles(copy_times)
        print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
        print(f"calchub homes: --project-disk {args.project_disk}")
        print(f"calchub database: {args.database_url.split(':', 1)[0] or 'sqlite'}")
        print(f"Jupyter writes: {args.jupyter_writes}")
        print(f"1 MB write + read, Jupyter Server  p50 {j[0]:8.2f} ms   p95 {j[1]:8.2f} ms")
        print(f"1 MB write + read, calchub         p50 {c[0]:8.2f} ms   p95 {c[1]:8.2f} ms")
        print(f"  calchub / Jupyter p50 {c[0] / j[0]:.2f}x (goal <= {WRITE_READ_GOAL}x)")
        print_cpu(jupyter_side, calchub_side)
        files = FOLDERS * FILES_PER_FOLDER
        label = f"copy {files} files in {FOLDERS} folders,"
        print(f"{label} cp -a    p50 {cp[0]:8.1f} ms   p95 {cp[1]:8.1f} ms")
        print(f"{label} calchub  p50 {cc[0]:8.1f} ms   p95 {cc[1]:8.1f} ms")
        print(f"  calchub / cp -a p50 {cc[0] / cp[0]:.2f}x (goal <= {COPY_GOAL}x)")
        return 0
    finally:
        server.stop()
        if jupyter is not None:
            jupyter.stop()
        remove_project_server_folders(folders)
        for folder in (jupyter_root, scratch):
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
