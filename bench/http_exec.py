"""project_exec over HTTP against the ping round trip, on one real `calchub serve`.

    .venv/bin/python bench/http_exec.py [--calls N]

Starts calchub (SQLite, temporary data folder, a short runtime folder under /tmp), creates a
project, starts it, then times N sequential `ping` calls and N sequential `project_exec
echo hi` calls on one keep-alive connection, and prints p50/p95 of each and their ratio:
what running a command in a sandboxed project costs on top of an authenticated request.
Needs root and bubblewrap, like the server's projects.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ping import project_server, remove_project_server_folders


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def timed(client: httpx.Client, calls: int, event: str, body: dict[str, object]) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        reply = client.post(f"/api/v1/{event}", json=body).json()
        samples.append(time.perf_counter() - started)
        if reply.get("event") not in ("pong", "project_exec_output"):
            raise RuntimeError(f"{event} failed: {reply}")
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    server, folders = project_server()
    try:
        server.wait_ready()
        key = server.printed_key
        assert key, "no admin key printed"
        with httpx.Client(base_url=server.url, auth=(key, ""), timeout=60) as client:
            project = client.post("/api/v1/create_project", json={"title": "bench"}).json()
            exec_body = {"project_id": project["project_id"], "command": "echo", "args": ["hi"]}
            timed(client, 20, "project_exec", exec_body)  # starts the project, warms up
            timed(client, 20, "ping", {})
            ping = percentiles(timed(client, args.calls, "ping", {}))
            execs = percentiles(timed(client, args.calls, "project_exec", exec_body))
        print(f"{args.calls} sequential calls each, one keep-alive connection, 127.0.0.1")
        print(f"  ping                    p50 {ping[0]:7.2f} ms   p95 {ping[1]:7.2f} ms")
        print(f"  project_exec echo hi    p50 {execs[0]:7.2f} ms   p95 {execs[1]:7.2f} ms")
        print(
            f"  project_exec / ping: p50 {execs[0] / ping[0]:.2f}x, p95 {execs[1] / ping[1]:.2f}x"
        )
        return 0
    finally:
        server.stop()
        remove_project_server_folders(folders)


if __name__ == "__main__":
    sys.exit(main())
