"""What senders without an API key cost everyone else.

Starts a real `calchub serve` (SQLite, fresh temporary data folder), then measures the
latency of sequential authenticated `ping`s on one keep-alive connection: first on an idle
server (the baseline, same run), then while F flooders each post a 9.9 MB JSON array to
/api/v1/ping without a key, over and over. Prints p50/p95 of both phases, their ratio, the
flooders' request count and the server's peak RSS.

    .venv/bin/python bench/keyless_flood.py [--seconds 10] [--flooders 3]

Everything listens on 127.0.0.1 only; the server is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

from ping import project_server, remove_project_server_folders

BODY = b"[" + b"1," * (9_900_000 // 2 - 1) + b"1]"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sequential_pings(url: str, key: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    with httpx.Client(base_url=url, auth=(key, ""), timeout=60) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.perf_counter()
            reply = client.post("/api/v1/ping", json={})
            latencies.append((time.perf_counter() - began) * 1000)
            if reply.json().get("event") != "pong":
                raise RuntimeError(f"not a pong: {reply.text[:200]}")
    return latencies


def flood(url: str, stop: threading.Event, sent: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            # The server may close a connection whose body it refused to read.
            with contextlib.suppress(httpx.HTTPError):
                client.post(
                    "/api/v1/ping", content=BODY, headers={"Content-Type": "application/json"}
                )
            sent[0] += 1


def summary(label: str, latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(f"{label:>22}: {len(ordered):6d} pings  p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")
    return p50, p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--flooders", type=int, default=3)
    args = parser.parse_args()
    server, folders = project_server()
    try:
        server.wait_ready()
        key = server.printed_key
        assert key, "the server printed no admin key"
        idle = sequential_pings(server.url, key, args.seconds)
        stop, sent = threading.Event(), [0]
        threads = [
            threading.Thread(target=flood, args=(server.url, stop, sent), daemon=True)
            for _ in range(args.flooders)
        ]
        for thread in threads:
            thread.start()
        peak = [0.0]

        def watch() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _rss_mb(server.process.pid))
                time.sleep(0.1)

        threading.Thread(target=watch, daemon=True).start()
        flooded = sequential_pings(server.url, key, args.seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        print(f"calchub ping latency, {args.flooders} keyless senders of 9.9 MB bodies")
        base50, base95 = summary("idle (baseline)", idle)
        p50, p95 = summary("under the flood", flooded)
        print(f"{'ratio flooded/idle':>22}: p50 {p50 / base50:.2f}x  p95 {p95 / base95:.2f}x")
        print(f"{'keyless requests sent':>22}: {sent[0]}   server peak RSS {peak[0]:.0f} MB")
    finally:
        server.stop()
        remove_project_server_folders(folders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
