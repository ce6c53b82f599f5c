"""Test harness: a real `calchub serve` subprocess on a free port, a real SMTP sink, and a
throw-away database (SQLite file, or a fresh PostgreSQL database per run)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub import arrivals
from calchub.db.engine import create_engine
from tests.scratch import scratch_folder

T = TypeVar("T")

PG_ADMIN_URL = os.environ.get(
    "CALCHUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def arriving() -> int:
    """A request's number as the HTTP protocol gives it when its head arrives
    (calchub/arrivals.py)."""
    scope: dict[str, object] = {}
    arrivals.stamp(scope)
    number = arrivals.arrival(scope)
    assert number is not None
    return number


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def backend() -> str:
    name = os.environ.get("CALCHUB_TEST_DATABASE", "sqlite")
    if name not in ("sqlite", "postgresql"):
        raise RuntimeError(f"CALCHUB_TEST_DATABASE must be sqlite or postgresql, not {name!r}")
    return name


class Loop:
    """A private event loop for sync tests that need to run a coroutine."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        self._loop.close()


class ThrowawayPostgres:
    """Creates `calchub_test_<random>` and drops it afterwards."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.name = f"calchub_test_{uuid.uuid4().hex[:12]}"
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        self.url = f"{base}/{self.name}"

    async def _admin(self, statement: str) -> None:
        engine = create_engine(PG_ADMIN_URL)
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    def create(self) -> str:
        self.loop.run(self._admin(f'CREATE DATABASE "{self.name}"'))
        return self.url

    def drop(self) -> None:
        self.loop.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


@contextmanager
def throwaway_database(sqlite_file: Path, loop: Loop) -> Iterator[str]:
    """A database nobody has used, for the backend under test: the given SQLite file, or a
    new PostgreSQL database dropped afterwards. An unreachable PostgreSQL skips the test,
    except under CI=true, where it fails."""
    if backend() == "sqlite":
        yield f"sqlite:///{sqlite_file}"
        return
    pg = ThrowawayPostgres(loop)
    try:
        url = pg.create()
    except OSError as exc:
        message = f"PostgreSQL is not reachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield url
    finally:
        pg.drop()


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def event(self) -> str | None:
        return self.body.get("event") if isinstance(self.body, dict) else None

    def __getitem__(self, key: str) -> Any:
        return self.body[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default) if isinstance(self.body, dict) else default


class ApiClient:
    """Calls `/api/v1/<event>` the way CoCalc clients do."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=60)

    def call(
        self,
        event: str,
        key: str | None,
        json_body: Any = None,
        *,
        form: dict[str, Any] | None = None,
        bearer: bool = False,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> Reply:
        all_headers = dict(headers or {})
        auth = None
        if key is not None:
            if bearer:
                all_headers["Authorization"] = f"Bearer {key}"
            else:
                auth = httpx.BasicAuth(key, "")
        if content is not None:
            response = self.http.post(
                f"/api/v1/{event}", content=content, headers=all_headers, auth=auth
            )
        elif form is not None:
            response = self.http.post(f"/api/v1/{event}", data=form, headers=all_headers, auth=auth)
        else:
            response = self.http.post(
                f"/api/v1/{event}",
                json=json_body if json_body is not None else {},
                headers=all_headers,
                auth=auth,
            )
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Reply(response.status_code, body)

    def close(self) -> None:
        self.http.close()


class Server:
    """`calchub serve` in a subprocess; `env` is shared with the admin CLI."""

    def __init__(self, data_dir: Path, database_url: str, smtp_url: str | None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.database_url = database_url
        self.url = f"http://127.0.0.1:{self.port}"
        # Project users must be able to reach their homes: pytest's own folders are 0700.
        self.projects_root = scratch_folder("p")
        runtime_root = scratch_folder("r")
        self.env = {
            **os.environ,
            "CALCHUB_DATA_DIR": str(data_dir),
            "CALCHUB_DATABASE_URL": database_url,
            "CALCHUB_SITE_URL": self.url,
            # Short, private socket folder per server (Unix socket paths are limited).
            "CALCHUB_RUNTIME_ROOT": str(runtime_root),
            "CALCHUB_PROJECTS_ROOT": str(self.projects_root),
            "CALCHUB_SCHEDULER_INTERVAL_S": "1",
            # The tests stand in for a proxy on this machine to give requests client
            # addresses of their choosing (per-IP limits).
            "CALCHUB_FORWARDED_ALLOW_IPS": "127.0.0.1",
            # Plain folder homes unless asked for (the disk image tests ask for images).
            "CALCHUB_PROJECT_DISK": os.environ.get("CALCHUB_PROJECT_DISK", "none"),
        }
        if smtp_url:
            self.env["CALCHUB_SMTP_URL"] = smtp_url
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 60) -> str | None:
        """Start and wait until it answers; returns the bootstrap admin key if one was printed."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "calchub.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        admin_key = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("calchub serve exited:\n" + "".join(self.output))
            self.output.append(line)
            if "API key" in line:
                admin_key = line.strip().rsplit(" ", 1)[-1]
            # Printed once the application has started on its (already bound) socket.
            if "calchub listening on" in line:
                break
        else:
            raise RuntimeError("calchub serve did not start:\n" + "".join(self.output))
        # Keep draining output so the server never blocks on a full pipe.
        import threading

        threading.Thread(target=self._drain, daemon=True).start()
        return admin_key

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `calchub <args>` against the same database."""
        result = subprocess.run(
            [sys.executable, "-m", "calchub.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"calchub {' '.join(args)} failed: {result.stderr}")
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)


class Database:
    """Direct access to the server's database, to check what is (not) stored."""

    def __init__(self, url: str, loop: Loop) -> None:
        self.loop = loop
        self.engine: AsyncEngine = create_engine(url)

    def execute(self, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
        async def run() -> list[Any]:
            async with self.engine.begin() as conn:
                result = await conn.execute(statement, params or {})
                return list(result.all()) if result.returns_rows else []

        return self.loop.run(run())

    def close(self) -> None:
        self.loop.run(self.engine.dispose())
