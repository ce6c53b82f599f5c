"""Jupyter execute latency against project_exec, on one real `calchub serve`.

    .venv/bin/python bench/jupyter.py [--calls N]

Starts calchub (SQLite, temporary data folder), creates a project and measures, all over
HTTP on one keep-alive connection:

- the first execute on a project that has never run (project start, kernel manager start,
  kernel start), and the first on a freshly restarted project (project already running);
- `2+2` on a warm pool (the project bridge's `system.jupyterExecute`, and REST v2
  `jupyter/execute` with `noCache`), each call made once the pool again holds ready kernels;
- `project_exec echo hi` on the same project (v1);
- a persistent session round trip (`x += 1` through `jupyter/sessions/execute`).

Prints p50/p95 and the ratios warm-pool/echo (goal: at most 2x) and session/echo. Needs root,
bubblewrap and Debian's python3-ipykernel, like the server's kernels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ping import project_server, remove_project_server_folders

POOL_SIZE = 2


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000


def clock(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    reply = client.post(path, json=body).json()
    if isinstance(reply, dict) and "error" in reply:
        raise RuntimeError(f"{path} failed: {reply['error']}")
    return reply


def bridge(client: httpx.Client, project_id: str, name: str, opts: dict[str, Any]) -> Any:
    body = {"project_id": project_id, "name": name, "args": [opts], "timeout": 60000}
    return post(client, "/api/conat/project", body)


def wait_for_pool(client: httpx.Client, project_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        kernels = bridge(client, project_id, "system.listJupyterKernels", {})
        if sum(1 for k in kernels if k.get("ready") and "session" not in k) >= POOL_SIZE:
            return
        time.sleep(0.2)
    raise RuntimeError("the kernel pool did not fill up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, help="warm-pool executes of each kind")
    args = parser.parse_args()
    server, folders = project_server()
    try:
        server.wait_ready()
        key = server.printed_key
        assert key, "no admin key printed"
        with httpx.Client(base_url=server.url, auth=(key, ""), timeout=120) as client:
            project_id = post(client, "/api/v1/create_project", {"title": "bench"})["project_id"]
            two = {"input": "2+2", "kernel": "python3"}
            v2_body = {**two, "project_id": project_id, "noCache": True}
            cold = clock(lambda: post(client, "/api/v2/jupyter/execute", v2_body))
            stop = {"projects": {"project_id": project_id, "action_request": {"action": "stop"}}}
            post(client, "/api/v1/query", {"query": stop})
            exec_body = {"project_id": project_id, "command": "echo", "args": ["hi"]}
            deadline = time.monotonic() + 60
            while True:  # the stop is carried out in the background; then start it again
                time.sleep(0.5)
                query = {"projects": {"project_id": project_id, "state": None}}
                state = post(client, "/api/v1/query", {"query": query})
                if state["query"]["projects"]["state"]["state"] == "opened":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the project did not stop")
            post(client, "/api/v1/project_exec", exec_body)
            restarted = clock(lambda: post(client, "/api/v2/jupyter/execute", v2_body))

            for _ in range(20):
                post(client, "/api/v1/project_exec", exec_body)
            echo = [
                clock(lambda: post(client, "/api/v1/project_exec", exec_body))
                for _ in range(max(30, args.calls))
            ]
            warm_bridge, warm_v2 = [], []
            for _ in range(args.calls):
                wait_for_pool(client, project_id)
                warm_bridge.append(
                    clock(lambda: bridge(client, project_id, "system.jupyterExecute", two))
                )
                wait_for_pool(client, project_id)
                warm_v2.append(clock(lambda: post(client, "/api/v2/jupyter/execute", v2_body)))
            made = post(
                client,
                "/api/v2/jupyter/sessions/create",
                {"project_id": project_id, "kernel": "python3"},
            )
            run = {
                "project_id": project_id,
                "session_id": made["session"]["session_id"],
                "input": "x = 0",
            }
            post(client, "/api/v2/jupyter/sessions/execute", run)
            run["input"] = "x += 1"
            session = [
                clock(lambda: post(client, "/api/v2/jupyter/sessions/execute", run))
                for _ in range(max(30, args.calls))
            ]
        e, b, v, s = (percentiles(x) for x in (echo, warm_bridge, warm_v2, session))
        print(f"first execute, project never started:  {cold * 1000:8.0f} ms")
        print(f"first execute, project just restarted: {restarted * 1000:8.0f} ms")
        print(f"project_exec echo hi (v1)        p50 {e[0]:7.2f} ms   p95 {e[1]:7.2f} ms")
        print(f"2+2 warm pool, project bridge    p50 {b[0]:7.2f} ms   p95 {b[1]:7.2f} ms")
        print(f"2+2 warm pool, v2 noCache        p50 {v[0]:7.2f} ms   p95 {v[1]:7.2f} ms")
        print(f"session x += 1 (v2)              p50 {s[0]:7.2f} ms   p95 {s[1]:7.2f} ms")
        print(f"warm pool / echo: bridge p50 {b[0] / e[0]:.2f}x, v2 p50 {v[0] / e[0]:.2f}x")
        print(f"session / echo: p50 {s[0] / e[0]:.2f}x")
        return 0
    finally:
        server.stop()
        remove_project_server_folders(folders)


if __name__ == "__main__":
    sys.exit(main())
