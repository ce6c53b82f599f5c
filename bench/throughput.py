"""Authenticated ping throughput and latency of calchub against a bare server, driven by wrk.

Starts, as child processes, a real `calchub serve` on a fresh temporary data folder (SQLite,
or `--database-url`) and bench/bare_app.py (Starlette + uvicorn with the options `calchub
serve` uses, one unauthenticated POST /api/v1/ping route). Each gets the same wrk loads:
throughput with `--connections` keep-alive connections, then latency with a single
connection sending requests one after another, for `--seconds` each, in `--rounds` rounds
that alternate which server goes first, so that the machine's changing load falls on both.
wrk (Debian's `wrk`) is written in C, so on a small machine the load generator costs the
server far less CPU than a Python client would. Prints the median over the rounds of
requests/s, p50/p99 latency and the server's CPU time per request (from /proc) per server,
and the calchub/bare ratios of each round and their median. The CPU time per request
changes least with the machine's load: bare/calchub of it is the throughput ratio the two
would reach on equal CPU.

    .venv/bin/python bench/throughput.py [--seconds 5] [--rounds 3] [--connections 32]
    .venv/bin/python bench/throughput.py --database-url postgresql://postgres@127.0.0.1/bench

Everything listens on 127.0.0.1; the servers are stopped and the folder removed on exit.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import httpx

from ping import ServerProcess, start_bare_and_calchub

LUA = """wrk.method = "POST"
wrk.body = "{{}}"
wrk.headers["Content-Type"] = "application/json"
{auth}
"""


@dataclass
class Figures:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    # wrk's own account of them ("connect 0, read 2, write 0, timeout 0"; "non-2xx 3").
    error_kinds: str = ""
    requests: int = 0


def _ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    unit = re.sub(r"^[0-9.]+", "", text)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str, script: Path, seconds: int, connections: int, threads: int, timeout_s: int = 2
) -> Figures:
    """wrk's figures; a reply slower than `timeout_s` counts as a timeout error."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout_s}s",
        "--latency",
        "-s",
        str(script),
        f"{url}/api/v1/ping",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    kinds = [f"non-2xx {errors}"] if non_2xx else []
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
        kinds.append(socket_errors.group(0).removeprefix("Socket errors: "))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Figures(rate, p50, p99, errors, "; ".join(kinds), requests)


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_pong(url: str, key: str | None) -> None:
    auth = (key, "") if key else None
    body = httpx.post(f"{url}/api/v1/ping", json={}, auth=auth, timeout=10).json()
    if body.get("event") != "pong":
        raise SystemExit(f"{url} does not answer ping: {body!r}")


def ping_script(key: str | None) -> Path:
    """A wrk script posting ping, with Basic auth when `key` is given; the caller removes it."""
    auth = ""
    if key:
        token = base64.b64encode(f"{key}:".encode()).decode()
        auth = f'wrk.headers["Authorization"] = "Basic {token}"'
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(LUA.format(auth=auth))
    return Path(lua.name)


@dataclass
class Target:
    label: str
    url: str
    key: str | None
    script: Path
    pid: int
    loads: list[Figures]
    singles: list[Figures]
    # The server's CPU time per request under each load, in microseconds.
    cpu_us: list[float]


def measure(targets: list[Target], args: argparse.Namespace) -> None:
    """`--rounds` rounds, each giving every target the same loads in turn (the order
    reversed every other round), so that a change in the machine's load falls on both."""
    for target in targets:
        check_pong(target.url, target.key)
        run_wrk(target.url, target.script, 2, args.connections, 2)  # warm-up
    for round_ in range(args.rounds):
        ordered = targets if round_ % 2 == 0 else targets[::-1]
        for target in ordered:
            before = cpu_seconds(target.pid)
            load = run_wrk(target.url, target.script, args.seconds, args.connections, 2)
            target.loads.append(load)
            target.cpu_us.append((cpu_seconds(target.pid) - before) / load.requests * 1e6)
        for target in ordered:
            target.singles.append(run_wrk(target.url, target.script, args.seconds, 1, 1))
    for target in targets:
        rate = median(load.rate for load in target.loads)
        p99 = median(load.p99_ms for load in target.loads)
        errors = sum(load.errors for load in target.loads)
        single_rate = median(single.rate for single in target.singles)
        single_p50 = median(single.p50_ms for single in target.singles)
        print(
            f"{target.label:10} {rate:9.0f} req/s (p99 {p99:6.2f} ms, errors {errors},"
            f" server CPU {median(target.cpu_us):5.0f} us/request)"
            f" | one connection: {single_rate:7.0f} req/s, p50 {single_p50:5.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="per load and round (5)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    data = Path(tempfile.mkdtemp(prefix="calchub-bench-"))
    servers: list[ServerProcess] = []
    targets: list[Target] = []
    try:
        bare, calchub = start_bare_and_calchub(data, args.database_url, servers)
        key = calchub.printed_key
        if key is None:
            raise SystemExit("calchub printed no admin key: use an empty database")
        for label, server, target_key in (("bare", bare, None), ("calchub", calchub, key)):
            script = ping_script(target_key)
            pid = server.process.pid
            targets.append(Target(label, server.url, target_key, script, pid, [], [], []))
        measure(targets, args)
        base, hub = targets
        ratios = [h.rate / b.rate for h, b in zip(hub.loads, base.loads, strict=True)]
        p50s = [h.p50_ms / b.p50_ms for h, b in zip(hub.singles, base.singles, strict=True)]
        cpu = [b / h for h, b in zip(hub.cpu_us, base.cpu_us, strict=True)]
        print(
            f"ratios calchub/bare: throughput {median(ratios):.2f}x"
            f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)}),"
            f" single-connection p50 {median(p50s):.2f}x"
            f" (rounds: {', '.join(f'{r:.2f}' for r in p50s)});"
            f" bare/calchub server CPU per request {median(cpu):.2f}x"
            f" (rounds: {', '.join(f'{r:.2f}' for r in cpu)})"
        )
    finally:
        for target in targets:
            target.script.unlink(missing_ok=True)
        for server in servers:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
