"""Many concurrent keep-alive connections doing ping: calchub against the bare server, with wrk.

    .venv/bin/python bench/connections.py [--connections 1000] [--seconds 15]
    .venv/bin/python bench/connections.py --database-url postgresql://postgres@127.0.0.1/bench

Starts, as child processes, a real `calchub serve` (SQLite in a temporary data folder, or
`--database-url`, an empty throw-away database) and bench/bare_app.py twice: as calchub
serves (the baseline), and with uvicorn's own accept (`--uvicorn-accept`, for reference:
with uvloop it accepts one connection per event loop turn). All have their default
settings: a listen backlog of 2048, no concurrency limit, and calchub closes a connection
only when its request head takes longer than 10 s or it stays idle for 5 s, which a
connection in wrk's loop never does. Each server in turn gets wrk with `--connections`
keep-alive connections (2 threads), first for 3 s to warm up, then for `--seconds` with
fresh connections: opening them is part of what is measured. A reply later than `--timeout`
seconds counts as an error, as do refused and reset connections and non-2xx replies; wrk
times a request from its first byte written, which for a new connection includes its wait
in the server's accept queue. wrk's percentiles are corrected for coordinated omission
(each late reply also stands for the requests its connection could not send meanwhile).
Prints requests/s, p50/p99 and errors for each, how often the kernel's listen queues
overflowed during the run (machine-wide counters), and the calchub/bare ratios; exits with
status 1 if calchub or the baseline had errors.

Every connection is a file descriptor in wrk and in the server: the soft limit on open files
is raised to the hard limit for this process and the servers it starts (`ulimit -n`).
Everything listens on 127.0.0.1; the servers are stopped and the folder removed on exit.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from ping import ServerProcess, start_bare, start_bare_and_calchub
from throughput import Figures, check_pong, ping_script, run_wrk

# wrk, the server, and a margin for the server's own files and database.
FILES_PER_CONNECTION = 2
SPARE_FILES = 200


def raise_open_files(connections: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections * FILES_PER_CONNECTION + SPARE_FILES
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"the hard limit on open files is {hard}; {needed} needed (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


def listen_queue_counters() -> dict[str, int]:
    """The kernel's ListenOverflows and ListenDrops (connections the accept queue had no room
    for), from /proc/net/netstat; for every socket of the machine."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            found = dict(zip(names.split()[1:], map(int, values.split()[1:]), strict=False))
            return {name: found.get(name, 0) for name in ("ListenOverflows", "ListenDrops")}
    return {}


def load(label: str, url: str, key: str | None, args: argparse.Namespace) -> Figures:
    check_pong(url, key)
    script = ping_script(key)
    try:
        run_wrk(url, script, 3, args.connections, 2, args.timeout)  # connect and warm up
        before = listen_queue_counters()
        figures = run_wrk(url, script, args.seconds, args.connections, 2, args.timeout)
        after = listen_queue_counters()
    finally:
        script.unlink()
    check_pong(url, key)  # still answering afterwards
    overflows = ", ".join(f"{name} {after[name] - before[name]}" for name in after)
    print(
        f"{label:20} {args.connections} connections: {figures.rate:7.0f} req/s,"
        f" p50 {figures.p50_ms:7.1f} ms, p99 {figures.p99_ms:7.1f} ms, errors {figures.errors}"
        + (f" ({figures.error_kinds})" if figures.errors else "")
        + f"; listen queue: {overflows}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per reply (10)")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    raise_open_files(args.connections)
    data = Path(tempfile.mkdtemp(prefix="calchub-bench-"))
    servers: list[ServerProcess] = []
    try:
        stock = start_bare(servers, "--uvicorn-accept")
        bare, calchub = start_bare_and_calchub(data, args.database_url, servers)
        stock.wait_ready()
        key = calchub.printed_key
        if key is None:
            raise SystemExit("calchub printed no admin key: use an empty database")
        load("bare, uvicorn accept", stock.url, None, args)
        base = load("bare", bare.url, None, args)
        hub = load("calchub", calchub.url, key, args)
        print(
            f"ratios calchub/bare: throughput {hub.rate / base.rate:.2f}x,"
            f" p50 {hub.p50_ms / base.p50_ms:.2f}x, p99 {hub.p99_ms / base.p99_ms:.2f}x"
        )
        if hub.errors or base.errors:
            sys.exit(1)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
