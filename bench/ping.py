"""Ping throughput of calchub against a bare server on the same stack.

Starts, as child processes, a real `calchub serve` on a fresh temporary data folder (SQLite)
and bench/bare_app.py (Starlette + uvicorn with the options `calchub serve` uses, one
unauthenticated POST /api/v1/ping route). Each is driven in turn by the same load loop:
C concurrent workers sharing one keep-alive httpx.AsyncClient, posting `ping` with Basic auth
for S seconds. Every response must be a pong. Prints requests/s and p50/p95 latency per
server, and the calchub/bare ratios.

    .venv/bin/python bench/ping.py [--seconds 10] [--concurrency 8]
    .venv/bin/python bench/ping.py --database-url postgresql://postgres@127.0.0.1/bench

Everything listens on 127.0.0.1 only; the servers are stopped on exit, on Ctrl-C and on
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

HOST = "127.0.0.1"
API_KEY = re.compile(r"\bsk_[0-9A-Za-z]{24}\b")
BARE_APP = Path(__file__).resolve().with_name("bare_app.py")
CALCHUB = [sys.executable, "-m", "calchub.cli"]
START_TIMEOUT = 60.0
WARM_UP_REQUESTS_PER_WORKER = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This environment without CALCHUB_* settings: only the flags given here count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CALCHUB_")}


class ServerProcess:
    """A server in a child process. Its output goes to a file of its own, which nothing reads
    while the server is measured: a reader thread here would wake in the timing process for
    every line a server logs, charging servers that log (calchub's access log) for it."""

    def __init__(self, label: str, command: list[str], port: int) -> None:
        self.label = label
        self.url = f"http://{HOST}:{port}"
        fd, name = tempfile.mkstemp(prefix=f"calchub-bench-{label.split()[0]}-", suffix=".log")
        os.close(fd)
        self._log = Path(name)
        self._kept: list[str] = []  # what it printed, once the file is removed
        # O_APPEND: the server's stdout and stderr land at the end whatever their offsets.
        with self._log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                env=clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    @property
    def lines(self) -> list[str]:
        """What the server printed so far."""
        try:
            return self._log.read_text(errors="replace").splitlines(keepends=True)
        except FileNotFoundError:
            return self._kept

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            # Each server prints its line once it accepts connections (after startup).
            if any(
                "Uvicorn running on" in line or " listening on http" in line for line in self.lines
            ):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.label} did not start:\n{''.join(self.lines)}")
            time.sleep(0.05)

    @property
    def printed_key(self) -> str | None:
        match = API_KEY.search("".join(self.lines))
        return match.group(0) if match else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log.exists():
            self._kept = self.lines
            self._log.unlink()


def start_bare(servers: list[ServerProcess], *options: str) -> ServerProcess:
    """The bare app on a free port with `options` (not yet waited for), appended to
    `servers`."""
    port = free_port()
    command = [sys.executable, str(BARE_APP), "--host", HOST, "--port", str(port), *options]
    bare = ServerProcess("bare", command, port)
    servers.append(bare)
    return bare


def start_bare_and_calchub(
    data: Path, database_url: str, servers: list[ServerProcess]
) -> tuple[ServerProcess, ServerProcess]:
    """The bare app and a `calchub serve` (fake runtime, access log at info as deployed) on
    free ports, both answering. Each is appended to `servers` as it starts, so the caller
    stops them however this ends."""
    bare = start_bare(servers)
    port = free_port()
    command = [*CALCHUB, "serve", "--host", HOST, "--port", str(port), "--data-dir", str(data)]
    command += ["--runtime", "fake"]
    if database_url:
        command += ["--database-url", database_url]
    calchub = ServerProcess("calchub", command, port)
    servers.append(calchub)
    bare.wait_ready()
    calchub.wait_ready()
    return bare, calchub


def remove_project_server_folders(folders: list[Path]) -> None:
    """Stop the projects a `project_server` started, then remove its folders. Sandboxes
    outlive the server that started them (a hub restart must not stop projects), so
    removing the folders alone would leave them running, and image homes mounted."""
    from calchub.runtime import LocalRuntime

    _, projects_root, runtime_root = folders

    async def stop_all() -> None:
        runtime = LocalRuntime(projects_root, runtime_root)
        try:
            for entry in runtime_root.iterdir():
                if entry.is_dir() and not entry.name.startswith("."):
                    try:
                        await runtime.stop(entry.name)
                    except (ValueError, OSError) as exc:
                        print(f"could not stop project {entry.name}: {exc}", file=sys.stderr)
        finally:
            await runtime.close()

    if runtime_root.is_dir():
        asyncio.run(stop_all())
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def project_server(*serve_args: str) -> tuple[ServerProcess, list[Path]]:
    """A `calchub serve` that can run projects, and the temporary folders it uses (data,
    project homes, runtime); the caller removes them. Project users must reach the homes
    and the runtime folder, hence o+x on both."""
    folders = [Path(tempfile.mkdtemp(prefix="calchub-bench-"))]
    for name in ("chbp", "chbr"):
        root = Path(tempfile.mkdtemp(prefix=f"/tmp/{name}-"))
        root.chmod(0o711)
        folders.append(root)
    data, projects_root, runtime_root = folders
    port = free_port()
    command = [
        *CALCHUB,
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--projects-root",
        str(projects_root),
        "--runtime-root",
        str(runtime_root),
        *serve_args,
    ]
    return ServerProcess("calchub", command, port), folders


def calchub_cli(*args: str) -> str:
    result = subprocess.run(
        [*CALCHUB, *args], env=clean_env(), capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"calchub {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Target:
    label: str
    server: ServerProcess
    key: str | None = None
    # Set when the key had to be made here (a database that already had accounts).
    revoke: tuple[str, ...] = ()


@dataclass
class Result:
    label: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index]


def _failure(response: httpx.Response) -> str | None:
    """None for a pong; otherwise what was wrong."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:200]
    ok = (
        response.status_code == 200
        and isinstance(body, dict)
        and body.get("event") == "pong"
        and "id" in body
        and "now" in body
    )
    return None if ok else f"HTTP {response.status_code}: {body!r}"


async def drive(target: Target, seconds: float, concurrency: int) -> Result:
    auth = httpx.BasicAuth(target.key, "") if target.key else None
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=target.server.url, auth=auth, limits=limits, timeout=10.0
    ) as client:

        async def warm_up() -> None:
            for _ in range(WARM_UP_REQUESTS_PER_WORKER):
                problem = _failure(await client.post("/api/v1/ping", json={}))
                if problem:
                    raise RuntimeError(f"{target.label} does not answer ping: {problem}")

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(warm_up())

        latencies: list[float] = []
        failures: list[str] = []
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await client.post("/api/v1/ping", json={})
                latencies.append(time.perf_counter() - start)
                problem = _failure(response)
                if problem:
                    failures.append(problem)

        started = time.perf_counter()
        async with asyncio.timeout(seconds + 30), asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        elapsed = time.perf_counter() - started
    return Result(target.label, elapsed, latencies, failures)


def start_targets(targets: list[Target], data_root: Path, database_url: str | None) -> None:
    """Start every server (appending each to `targets` at once, so that all get stopped)."""
    port = free_port()
    bare = ServerProcess(
        "bare", [sys.executable, str(BARE_APP), "--host", HOST, "--port", str(port)], port
    )
    targets.append(Target("bare", bare))
    databases = [("sqlite", f"sqlite:///{data_root / 'sqlite' / 'calchub.db'}", "sqlite")]
    if database_url:
        databases.append((database_url.split(":", 1)[0], database_url, "other"))
    for name, url, folder in databases:
        port = free_port()
        command = [
            *CALCHUB,
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--data-dir",
            str(data_root / folder),
            "--database-url",
            url,
        ]
        label = f"calchub ({name})"
        targets.append(Target(label, ServerProcess(label, command, port)))


def provide_keys(targets: list[Target], data_root: Path, database_url: str | None) -> None:
    for target in targets:
        target.server.wait_ready()
        if target.label == "bare":
            continue
        target.key = target.server.printed_key
        if target.key is None and database_url:
            # The database had accounts already: make a key of our own, revoked at the end.
            where = ("--data-dir", str(data_root / "other"), "--database-url", database_url)
            created = calchub_cli(
                "admin",
                "create-account",
                "--email",
                f"ping-bench-{uuid.uuid4().hex[:8]}@example.com",
                "--first-name",
                "Ping",
                "--last-name",
                "Bench",
                "--api-key",
                *where,
            )
            target.key = API_KEY.search(created).group(0)  # type: ignore[union-attr]
            target.revoke = where
        if target.key is None:
            raise RuntimeError(f"{target.label} printed no API key")


def revoke_made_keys(targets: list[Target]) -> None:
    for target in targets:
        if not target.revoke or not target.key:
            continue
        for key in json.loads(calchub_cli("admin", "api-key", "list", *target.revoke)):
            if target.key.startswith(key["prefix"]) and key["name"] == "created with account":
                calchub_cli("admin", "api-key", "revoke", str(key["id"]), *target.revoke)


def report(results: list[Result], seconds: float, concurrency: int) -> None:
    print(
        f"ping benchmark: {seconds:g} s per server, {concurrency} concurrent keep-alive "
        f"workers, {HOST}; Python {platform.python_version()}, {os.cpu_count()} CPUs "
        "(load generator on the same machine)"
    )
    print(f"{'server':<22}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}")
    for r in results:
        print(
            f"{r.label:<22}{len(r.latencies):>10}{r.rate:>10.1f}"
            f"{r.percentile(0.50) * 1000:>10.2f}{r.percentile(0.95) * 1000:>10.2f}"
        )
    bare = results[0]
    for r in results[1:]:
        print(
            f"{r.label} / bare: throughput {r.rate / bare.rate:.2f}x, "
            f"p50 latency {r.percentile(0.50) / bare.percentile(0.50):.2f}x, "
            f"p95 latency {r.percentile(0.95) / bare.percentile(0.95):.2f}x"
        )


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Handled as Ctrl-C, which asyncio.run turns into a clean cancellation.
    signal.raise_signal(signal.SIGINT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per server (10)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent workers (8)")
    parser.add_argument(
        "--database-url",
        help="also measure calchub on this database, e.g. postgresql://... (best: an empty one)",
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.concurrency < 1:
        parser.error("--seconds must be > 0 and --concurrency >= 1")
    # Also when started in the background, where SIGINT may arrive ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)

    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="calchub-bench-") as tmp:
        data_root = Path(tmp)
        try:
            start_targets(targets, data_root, args.database_url)
            provide_keys(targets, data_root, args.database_url)
            results = [
                asyncio.run(drive(target, args.seconds, args.concurrency)) for target in targets
            ]
            report(results, args.seconds, args.concurrency)
            failed = [r for r in results if r.failures]
            for r in failed:
                print(
                    f"{r.label}: {len(r.failures)} responses were not pongs, e.g. {r.failures[0]}",
                    file=sys.stderr,
                )
            return 1 if failed else 0
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except RuntimeError as exc:
            print(f"ping benchmark: {exc}", file=sys.stderr)
            return 1
        finally:
            for target in targets:
                target.server.stop()
            try:
                revoke_made_keys(targets)
            except RuntimeError as exc:
                print(f"ping benchmark: could not revoke its key: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
