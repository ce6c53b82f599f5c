"""The `calchub` command line, run as real subprocesses on a fresh data folder per test."""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, func, inspect, select, text

from calchub import __version__
from calchub.cli import build_parser
from calchub.db.engine import create_engine
from tests.harness import (
    PG_ADMIN_URL,
    ApiClient,
    Loop,
    Server,
    backend,
    free_port,
    throwaway_database,
)

API_KEY = re.compile(r"sk_[0-9A-Za-z]{24}")
CURRENT_KEY = re.compile(r"sk-[0-9A-Za-z]{22}")
WRONG_KEY = {"error": "No account found. Is your API key wrong?"}
CLI = [sys.executable, "-m", "calchub.cli"]


def clean_env(**values: str) -> dict[str, str]:
    """The test process's environment without any CALCHUB_* setting, plus `values`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CALCHUB_")
        or name.startswith("CALCHUB_TEST_")
        # Test installs register in the session's registry, never the machine's.
        or name == "CALCHUB_INSTALL_REGISTRY"
    }
    # Plain folder homes unless a test asks for disk images, as in tests/harness.py.
    return {**env, "CALCHUB_PROJECT_DISK": "none", **values}


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def run_cli_together(
    env: dict[str, str], commands: list[list[str]]
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at the same time (each one is a Python start-up)."""
    processes = [
        subprocess.Popen(
            [*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for args in commands
    ]
    results = []
    for args, process in zip(commands, processes, strict=True):
        stdout, stderr = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
    return results


def assert_failed_cleanly(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert result.stdout == ""
    assert result.stderr.startswith("calchub: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


def table_names(url: str, loop: Loop) -> list[str]:
    async def names() -> list[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        finally:
            await engine.dispose()

    return loop.run(names())


def query(url: str, loop: Loop, statement: Any) -> list[Any]:
    async def rows() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(statement)).all())
        finally:
            await engine.dispose()

    return loop.run(rows())


def account_count(url: str, loop: Loop) -> int:
    if "accounts" not in table_names(url, loop):
        return 0
    return int(query(url, loop, text("SELECT count(*) FROM accounts"))[0][0])


def dump_database(url: str, loop: Loop) -> str:
    """Every value of every row of every table, as text."""

    async def dump() -> str:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                metadata = MetaData()
                await conn.run_sync(lambda sync: metadata.reflect(sync))
                parts = []
                for table in metadata.sorted_tables:
                    for row in (await conn.execute(select(table))).all():
                        parts.append(repr(tuple(row)))
                return "\n".join(parts)
        finally:
            await engine.dispose()

    return loop.run(dump())


class ServeProcess:
    """`calchub serve ARGS` with its output collected line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [*CLI, "serve", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("calchub serve did not start:\n" + self.output) from None
            if line is None:
                raise AssertionError("calchub serve exited:\n" + self.output)
            self.lines.append(line)
            # Printed once the application has started on its (already bound) socket.
            if "calchub listening on" in line:
                return

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def api_key(self) -> str | None:
        keys = API_KEY.findall(self.output)
        assert len(keys) <= 1, self.output
        return keys[0] if keys else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Site:
    """One fresh data folder and database, with the CLI and servers pointed at them."""

    def __init__(self, root: Path, database_url: str, loop: Loop) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.database_url = database_url
        self.loop = loop
        self.env = clean_env(CALCHUB_DATA_DIR=str(self.data_dir), CALCHUB_DATABASE_URL=database_url)
        self._servers: list[Server] = []
        self._clients: list[ApiClient] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = run_cli(self.env, *args)
        assert result.returncode == 0, f"calchub {' '.join(args)} failed:\n{result.stderr}"
        return result

    def cli_json(self, *args: str) -> Any:
        lines = self.cli(*args, "--json").stdout.splitlines()
        assert len(lines) == 1, lines
        return json.loads(lines[0])

    def cli_fails(self, *args: str) -> str:
        """Run a command that must fail cleanly; returns its message."""
        return assert_failed_cleanly(run_cli(self.env, *args))

    def cli_all_fail(self, *commands: list[str]) -> list[str]:
        """Several such commands at once. The schema must exist already: concurrent first
        migrations of one SQLite file race each other."""
        return [assert_failed_cleanly(r) for r in run_cli_together(self.env, list(commands))]

    def serve(self) -> tuple[Server, ApiClient, str | None]:
        server = Server(self.data_dir, self.database_url, None)
        server.env = {**self.env, "CALCHUB_SITE_URL": server.url}
        self._servers.append(server)
        key = server.start()
        client = ApiClient(server.url)
        self._clients.append(client)
        return server, client, key

    def accounts(self) -> int:
        return account_count(self.database_url, self.loop)

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for server in self._servers:
            server.stop()


@pytest.fixture
def fresh_database_url(tmp_path: Path, loop: Loop) -> Iterator[str]:
    """A database nobody has touched: a SQLite file inside the data folder, or a new
    PostgreSQL database."""
    with throwaway_database(tmp_path / "data" / "calchub.db", loop) as url:
        yield url


@pytest.fixture
def site(tmp_path: Path, fresh_database_url: str, loop: Loop) -> Iterator[Site]:
    s = Site(tmp_path, fresh_database_url, loop)
    yield s
    s.close()


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:8]}@example.com"


def create(site: Site, *extra: str, email: str | None = None) -> dict[str, Any]:
    created: dict[str, Any] = site.cli_json(
        "admin",
        "create-account",
        "--email",
        email or new_email(),
        "--first-name",
        "Ada",
        "--last-name",
        "Lovelace",
        "--init",
        *extra,
    )
    return created


# --- admin create-account ---------------------------------------------------------------


def test_create_account_prints_only_the_account_id(site: Site) -> None:
    assert not site.data_dir.exists()
    created = create(site)
    assert set(created) == {"account_id"}
    assert str(uuid.UUID(created["account_id"])) == created["account_id"]
    assert site.accounts() == 1


def test_create_account_options_take_effect_over_http(site: Site) -> None:
    admin_email = new_email()
    admin = create(site, "--admin", "--api-key", "--password", "admin-pass-1", email=admin_email)
    user = create(site, "--api-key", "--password", "user-pass-1")
    for created in (admin, user):
        assert set(created) == {"account_id", "api_key"}
        assert API_KEY.fullmatch(created["api_key"]), created

    _, api, bootstrap_key = site.serve()
    assert bootstrap_key is None  # accounts exist already

    reply = api.call("user_search", admin["api_key"], {"query": admin_email, "admin": True})
    assert reply.event == "user_search_results", reply.body
    assert [r["account_id"] for r in reply["results"]] == [admin["account_id"]]
    reply = api.call("user_search", user["api_key"], {"query": admin_email, "admin": True})
    assert reply.body["error"] == "must be logged in and a member of the admin group"

    for created, password in ((user, "user-pass-1"), (admin, "admin-pass-1")):
        body = {"account_id": created["account_id"], "password": password}
        reply = api.call("user_auth", user["api_key"], body)
        assert reply.event == "user_auth_token", reply.body
    reply = api.call(
        "user_auth", user["api_key"], {"account_id": admin["account_id"], "password": "wrong-pw"}
    )
    assert reply.body["error"] == "incorrect password"


def test_create_account_rejects_bad_input_and_creates_nothing(site: Site) -> None:
    base = [
        *("admin", "create-account", "--first-name", "A", "--last-name", "B", "--api-key"),
        "--init",
    ]
    assert "not a valid email address" in site.cli_fails(*base, "--email", "not-an-email")
    messages = site.cli_all_fail(
        [*base, "--email", new_email(), "--password", "short"],
        [*base, "--email", new_email(), "--password", "x" * 65],
    )
    for message in messages:
        assert "Password must be between 6 and 64 characters" in message
    assert site.accounts() == 0

    email = new_email()
    create(site, email=email)
    assert site.cli_fails(*base, "--email", email.upper())
    assert site.accounts() == 1


# --- admin ban / unban --------------------------------------------------------------------


def test_ban_and_unban_take_effect_at_once(site: Site) -> None:
    user = create(site, "--api-key")
    _, api, _ = site.serve()
    assert api.call("ping", user["api_key"]).event == "pong"
    site.cli_json("admin", "setting", "help_email", "help@example.org")

    banned = site.cli_json("admin", "ban", user["account_id"].upper())
    assert banned == {"account_id": user["account_id"], "banned": True}
    reply = api.call("ping", user["api_key"])
    assert (reply.status, reply.body) == (
        400,
        {"error": "User is BANNED.  If this is a mistake, please contact help@example.org"},
    )

    unbanned = site.cli_json("admin", "unban", user["account_id"])
    assert unbanned == {"account_id": user["account_id"], "banned": False}
    assert api.call("ping", user["api_key"]).event == "pong"

    unknown = str(uuid.uuid4())
    messages = site.cli_all_fail(["admin", "ban", unknown], ["admin", "unban", "not-a-uuid"])
    assert unknown in messages[0]


# --- admin api-key ------------------------------------------------------------------------


def test_api_key_create_list_and_revoke(site: Site) -> None:
    first = create(site, "--api-key")
    second = create(site, "--api-key")
    laptop = site.cli_json("admin", "api-key", "create", first["account_id"], "--name", "laptop")
    assert set(laptop) == {"id", "account_id", "project_id", "expire", "api_key"}
    assert laptop["account_id"] == first["account_id"]
    assert CURRENT_KEY.fullmatch(laptop["api_key"])
    secrets = [first["api_key"], second["api_key"], laptop["api_key"]]

    results = run_cli_together(
        site.env,
        [
            ["admin", "api-key", "list", "--account-id", first["account_id"], "--json"],
            ["admin", "api-key", "list", "--json"],
        ],
    )
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    listed, everything = (r.stdout for r in results)
    for output in (listed, everything):
        assert not any(secret in output or secret[3:19] in output for secret in secrets)
    mine = json.loads(listed)
    assert {k["account_id"] for k in mine} == {first["account_id"]}
    assert [(k["prefix"], k["name"]) for k in mine] == [
        (first["api_key"][:7], "created with account"),
        (laptop["api_key"][:3] + "..." + laptop["api_key"][-6:], "laptop"),
    ]
    assert {k["prefix"] for k in json.loads(everything)} >= {s[:7] for s in secrets[:2]}

    _, api, _ = site.serve()
    for key in secrets:
        assert api.call("ping", key).event == "pong"
    laptop_id = mine[1]["id"]
    assert site.cli_json("admin", "api-key", "revoke", str(laptop_id)) == {"deleted": laptop_id}
    reply = api.call("ping", laptop["api_key"])
    assert (reply.status, reply.body) == (400, WRONG_KEY)
    assert api.call("ping", first["api_key"]).event == "pong"

    messages = site.cli_all_fail(
        ["admin", "api-key", "revoke", str(laptop_id)],
        ["admin", "api-key", "create", str(uuid.uuid4())],
    )
    assert str(laptop_id) in messages[0]


# --- admin setting ------------------------------------------------------------------------


def test_settings_show_change_and_reset(site: Site) -> None:
    settings = site.cli_json("admin", "setting", "--init")
    assert settings["email_signup"] == "yes"
    assert settings["account_creation"] == "any"
    assert {"site_name", "help_email", "account_creation_ip_limit"} <= set(settings)

    assert site.cli_json("admin", "setting", "email_signup", "no") == {"email_signup": "no"}
    assert site.cli_json("admin", "setting", "email_signup") == {"email_signup": "no"}
    reset = site.cli_json("admin", "setting", "email_signup", "--reset")
    assert reset == {"email_signup": "yes"}

    messages = site.cli_all_fail(
        ["admin", "setting", "email_signup", "maybe"],
        ["admin", "setting", "account_creation_ip_limit", "lots"],
        ["admin", "setting", "no_such_setting", "1"],
        ["admin", "setting", "no_such_setting"],
    )
    assert "email_signup must be one of" in messages[0]
    assert "must be an integer" in messages[1]
    assert all("unknown setting 'no_such_setting'" in m for m in messages[2:])
    assert site.cli_json("admin", "setting") == settings


# --- db upgrade ---------------------------------------------------------------------------


def test_db_upgrade_creates_the_schema_and_is_repeatable(site: Site) -> None:
    refused = site.cli_fails("db", "upgrade")
    assert "--init" in refused and str(site.data_dir) in refused
    assert not site.data_dir.exists()
    for args in (["--init"], []):
        upgraded = site.cli_json("db", "upgrade", *args)
        assert upgraded == {"database": "up to date", "revision": upgraded["revision"]}
        assert upgraded["revision"]
        tables = set(table_names(site.database_url, site.loop))
        assert {"accounts", "api_keys", "server_settings", "alembic_version"} <= tables
        versions = query(site.database_url, site.loop, text("SELECT * FROM alembic_version"))
        assert len(versions) == 1
    assert site.accounts() == 0


def test_unusable_database_is_reported_without_a_traceback(tmp_path: Path) -> None:
    missing = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/calchub_missing_{uuid.uuid4().hex[:8]}"
    env = clean_env(CALCHUB_DATA_DIR=str(tmp_path / "data"))
    results = run_cli_together(
        env,
        [
            ["db", "upgrade", "--init", "--database-url", missing],
            ["db", "upgrade", "--init", "--database-url", "mysql://localhost/calchub"],
        ],
    )
    messages = [assert_failed_cleanly(result) for result in results]
    assert "unsupported database URL" in messages[1]


# --- serve --------------------------------------------------------------------------------


def test_serve_prints_the_admin_key_only_on_first_start(site: Site) -> None:
    server, api, key = site.serve()
    assert key is not None and API_KEY.fullmatch(key)
    output = "".join(server.output)
    assert output.count(key) == 1
    assert "Created the admin account admin@localhost" in output
    reply = api.call("user_search", key, {"query": "admin@localhost", "admin": True})
    assert reply.event == "user_search_results", reply.body
    assert len(reply["results"]) == 1
    server.stop()

    again, api, second_key = site.serve()
    assert second_key is None
    assert "API key" not in "".join(again.output)
    assert not API_KEY.search("".join(again.output))
    assert api.call("ping", key).event == "pong"
    assert site.accounts() == 1


def test_serve_flags_beat_environment(tmp_path: Path) -> None:
    env_dir, flag_dir = tmp_path / "from-env", tmp_path / "from-flag"
    env_port, flag_port = free_port(), free_port()
    env = clean_env(CALCHUB_DATA_DIR=str(env_dir), CALCHUB_PORT=str(env_port))
    serve = ServeProcess(env, "--data-dir", str(flag_dir), "--port", str(flag_port))
    try:
        serve.wait_started()
        assert f"http://127.0.0.1:{flag_port} (data in {flag_dir.resolve()})" in serve.output
        assert (flag_dir / "calchub.db").is_file()
        assert not env_dir.exists()
        api = ApiClient(f"http://127.0.0.1:{flag_port}")
        try:
            assert serve.api_key is not None
            assert api.call("ping", serve.api_key).event == "pong"
        finally:
            api.close()
    finally:
        serve.stop()


def test_serve_with_a_sqlite_database_url_flag(site: Site) -> None:
    elsewhere = site.root / "elsewhere" / "hub.sqlite"
    port = free_port()
    serve = ServeProcess(site.env, "--database-url", f"sqlite:///{elsewhere}", "--port", str(port))
    try:
        serve.wait_started()
        assert elsewhere.is_file()
        api = ApiClient(f"http://127.0.0.1:{port}")
        try:
            assert serve.api_key is not None
            assert api.call("ping", serve.api_key).event == "pong"
        finally:
            api.close()
    finally:
        serve.stop()
    assert account_count(f"sqlite:///{elsewhere}", site.loop) == 1
    # The database named in CALCHUB_DATABASE_URL was not used.
    if backend() == "sqlite":
        assert not (site.data_dir / "calchub.db").exists()
    else:
        assert table_names(site.database_url, site.loop) == []


# --- secrets at rest ----------------------------------------------------------------------


def test_no_plaintext_secret_is_stored(site: Site) -> None:
    passwords = [f"pw-{uuid.uuid4().hex[:20]}" for _ in range(2)]
    first = create(site, "--api-key", "--admin", "--password", passwords[0])
    second = create(site, "--password", passwords[1])
    extra = site.cli_json("admin", "api-key", "create", second["account_id"], "--name", "ci")
    secrets = [*passwords, first["api_key"], extra["api_key"]]

    server, api, _ = site.serve()
    for account, password in ((first, passwords[0]), (second, passwords[1])):
        body = {"account_id": account["account_id"], "password": password}
        reply = api.call("user_auth", first["api_key"], body)
        assert reply.event == "user_auth_token", reply.body
        secrets.append(reply["auth_token"])
    assert api.call("ping", extra["api_key"]).event == "pong"

    def check_files() -> None:
        files = [path for path in site.data_dir.rglob("*") if path.is_file()]
        assert files
        for path in files:
            content = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, f"{secret!r} found in {path}"

    check_files()  # while running: includes the SQLite write-ahead log
    server.stop()
    check_files()
    stored = dump_database(site.database_url, site.loop)
    assert first["account_id"] in stored
    for secret in secrets:
        assert secret not in stored
    count = query(site.database_url, site.loop, select(func.count()).select_from(text("api_keys")))
    assert count[0][0] == 2


# --- the command line itself --------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser, path: str = "calchub") -> Iterator[Any]:
    """(path, parser, help text) of every command below `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub, helps.get(name)
                yield from _subcommands(sub, f"{path} {name}")


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_version_help_and_a_description_for_every_command(tmp_path: Path) -> None:
    env = clean_env()
    version = run_cli(env, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"calchub {__version__}")
    for args in ([], ["admin"], ["admin", "api-key"], ["db"]):
        bare = run_cli(env, *args)
        assert bare.returncode == 0, bare.stderr
        assert bare.stdout.startswith(f"usage: calchub {' '.join(args)}".rstrip()), bare.stdout
        assert "commands:" in bare.stdout
    assert not (tmp_path / "calchub-data").exists()

    commands = list(_subcommands(build_parser()))
    assert {"calchub serve", "calchub admin accounts find", "calchub admin backup"} <= {
        path for path, _, _ in commands
    }
    for path, parser, summary in commands:
        assert summary and "\n" not in summary, f"{path} has no one-line description"
        assert parser.description, path
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if path.startswith(("calchub admin", "calchub db")) and leaf:
            offered = _options(parser)
            serve_only = {"--host", "--port", "--smtp-url", "--site-url", "--log-level"}
            assert not offered & serve_only, (path, offered & serve_only)
            assert {"--data-dir", "--database-url", "--config"} <= offered, path
    docs_help = run_cli(env, "docs", "--help").stdout
    assert "--output" in docs_help and "default docs/api.md" in docs_help
    serve_help = run_cli(env, "serve", "--help").stdout
    for flag in ("--log-level", "--log-format", "--url-prefix", "--forwarded-allow-ips"):
        assert flag in serve_help


def test_admin_commands_name_the_site_and_never_create_one_unasked(
    tmp_path: Path, fresh_database_url: str, loop: Loop
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_env()
    commands = [
        ["admin", "api-key", "list"],
        ["admin", "accounts", "list"],
        ["admin", "create-account", "--email", "a@b.org", "--first-name", "A", "--last-name", "B"],
        ["admin", "setting"],
        ["db", "upgrade"],
    ]
    for args in commands:
        result = subprocess.run(
            [*CLI, *args], env=env, cwd=elsewhere, capture_output=True, text=True, check=False
        )
        message = assert_failed_cleanly(result)
        folder = elsewhere / "calchub-data"
        assert f"calchub: using data folder {folder}, database sqlite:///" in message
        assert f"no data folder {folder}" in message and "--init" in message
        assert list(elsewhere.iterdir()) == [], args

    # The same against the test database: named (password hidden), refused while empty.
    site_env = clean_env(
        CALCHUB_DATA_DIR=str(tmp_path / "data"), CALCHUB_DATABASE_URL=fresh_database_url
    )
    message = assert_failed_cleanly(run_cli(site_env, "admin", "accounts", "list"))
    assert "no calchub database at" in message
    assert account_count(fresh_database_url, loop) == 0

    created = run_cli(site_env, "admin", "accounts", "list", "--init")
    assert created.returncode == 0, created.stderr
    assert created.stdout == "No accounts.\n"
    assert created.stderr.startswith(f"calchub: using data folder {tmp_path / 'data'}")
    again = run_cli(site_env, "admin", "accounts", "list")
    assert again.returncode == 0 and again.stdout == "No accounts.\n", again.stderr


def test_accounts_list_and_find_as_tables_and_json(site: Site) -> None:
    boss = create(site, "--admin", email="Boss.Person@example.org")
    ada = create(site)
    lines = site.cli("admin", "accounts", "list").stdout.splitlines()
    assert lines[0].split() == [
        *("ACCOUNT", "ID", "EMAIL", "NAME", "ADMIN", "BANNED", "CREATED", "LAST", "ACTIVE")
    ]
    assert [line.split()[0] for line in lines[1:]] == [boss["account_id"], ada["account_id"]]
    assert lines[1].split()[1:5] == ["boss.person@example.org", "Ada", "Lovelace", "yes"]
    assert lines[2].split()[4] == "no"

    admins = site.cli_json("admin", "accounts", "list", "--admins")
    assert [(a["account_id"], a["admin"], a["banned"]) for a in admins] == [
        (boss["account_id"], True, False)
    ]
    assert set(admins[0]) >= {"email_address", "first_name", "last_name", "created"}
    for query in ("BOSS.p", "person@", boss["account_id"][:8]):
        found = site.cli_json("admin", "accounts", "find", query)
        assert [a["account_id"] for a in found] == [boss["account_id"]], query
    assert len(site.cli_json("admin", "accounts", "find", "lovelace")) == 2
    assert site.cli_json("admin", "accounts", "find", "%") == []
    assert site.cli("admin", "accounts", "find", "nobody-like-this").stdout == "No accounts.\n"

    site.cli("admin", "ban", ada["account_id"])
    banned = site.cli("admin", "accounts", "find", ada["account_id"]).stdout.splitlines()
    assert banned[1].split()[5] == "yes"


def test_api_key_list_is_a_table_by_default(site: Site) -> None:
    owner = create(site, "--api-key")
    text = site.cli("admin", "api-key", "create", owner["account_id"], "--name", "ci box").stdout
    assert re.fullmatch(
        rf"New API key \d+ for account {owner['account_id']}, shown only now: sk-\w{{22}}\n", text
    ), text
    lines = site.cli("admin", "api-key", "list").stdout.splitlines()
    assert lines[0].split() == [
        *("ID", "ACCOUNT", "ID", "KEY", "NAME", "PROJECT", "CREATED", "EXPIRES", "LAST", "USED")
    ]
    assert len(lines) == 3
    assert "ci box" in lines[2] and owner["api_key"][:7] in lines[1]
    assert not API_KEY.search("\n".join(lines)) and not CURRENT_KEY.search("\n".join(lines))
    deleted = site.cli("admin", "api-key", "delete", lines[2].split()[0]).stdout
    assert deleted == f"Deleted API key {lines[2].split()[0]}.\n"


def test_a_second_server_on_a_busy_port_says_so_and_announces_nothing(site: Site) -> None:
    server, _, _ = site.serve()
    second = ServeProcess(site.env, "--port", str(server.port))
    try:
        second.process.wait(timeout=60)
    finally:
        second.stop()
    time.sleep(0.2)  # the reader thread collects the last lines
    output = "".join(iter_queue(second))
    assert second.process.returncode == 1, output
    assert f"calchub: cannot listen on 127.0.0.1:{server.port}: address already in use" in output
    assert "listening" not in output and "Created the admin account" not in output
    assert "Traceback" not in output


def iter_queue(serve: ServeProcess) -> Iterator[str]:
    while True:
        try:
            line = serve._queue.get(timeout=5)
        except queue.Empty:
            return
        if line is None:
            return
        yield line


def test_config_file_errors_list_the_valid_names(tmp_path: Path) -> None:
    config = tmp_path / "calchub.toml"
    config.write_text('data-dir = "/srv/calchub"\n')
    for args in (["serve"], ["admin", "accounts", "list"]):
        message = assert_failed_cleanly(run_cli(clean_env(), *args, "--config", str(config)))
        assert "unknown setting 'data-dir'" in message
        assert "did you mean 'data_dir'?" in message
        assert "valid names: host, port, data_dir, database_url" in message
        assert "url_prefix" in message and "metrics_token" in message
    config.write_text('log_format = "xml"\n')
    message = assert_failed_cleanly(run_cli(clean_env(), "serve", "--config", str(config)))
    assert "log_format must be one of text, json" in message


def test_json_logs_with_an_access_log_that_keeps_query_strings_out(site: Site) -> None:
    port = free_port()
    serve = ServeProcess(site.env, "--port", str(port), "--log-format", "json")
    try:
        serve.wait_started()
        api = ApiClient(f"http://127.0.0.1:{port}")
        try:
            assert serve.api_key is not None
            assert api.call("ping", serve.api_key).event == "pong"
            api.http.get("/auth/verify", params={"email": "a@b.c", "token": "secret-token"})
            api.http.post("/auth/verify", data={"email": "a@b.c", "token": "secret-token"})
        finally:
            api.close()
    finally:
        serve.stop()
    time.sleep(0.2)
    lines = [*serve.lines, *iter_queue(serve)]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records and {"time", "level", "logger", "message"} <= set(records[0])
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("POST", "/api/v1/ping", 200),
        ("GET", "/auth/verify", 400),
        ("POST", "/auth/verify", 403),
    ]
    assert all(r["level"] == "info" for r in access)
    assert "secret-token" not in "".join(lines)


def test_missing_tools_are_named_with_the_package_that_ships_them(
    site: Site, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    bwrap = shutil.which("bwrap")
    if bwrap:
        (bin_dir / "bwrap").symlink_to(bwrap)
    port = free_port()
    serve = ServeProcess({**site.env, "PATH": str(bin_dir)}, "--port", str(port))
    try:
        serve.wait_started()
        api = ApiClient(f"http://127.0.0.1:{port}")
        try:
            key = serve.api_key
            assert key is not None
            assert api.call("ping", key).event == "pong"
            # Every project call answers the reason, never a 500 nor a false success.
            project = api.call("create_project", key, {"title": "no sandbox"})["project_id"]
            target = {"project_id": project}
            calls = [
                ("touch_project", target),
                ("project_exec", {**target, "command": "true"}),
                ("read_text_file_from_project", {**target, "path": "a.txt"}),
                ("write_text_file_to_project", {**target, "path": "a.txt", "content": "x"}),
            ]
            for event, body in calls:
                reply = api.call(event, key, body)
                assert reply.status == 200 and reply.event == "error", (event, reply.body)
                assert "projects cannot run on this server" in reply["error"], reply.body
            copy = {
                "src_project_id": project,
                "src_path": "a.txt",
                "target_project_id": project,
                "target_path": "b.txt",
            }
            reply = api.call("copy_path_between_projects", key, copy)
            assert reply["error"].startswith("copies between projects cannot run on this server")
        finally:
            api.close()
    finally:
        serve.stop()
    output = serve.output
    assert "rsync is not installed (Debian: apt-get install rsync)" in output
    assert "projects still run" in output
    missing = "bwrap is not installed (Debian: apt-get install bubblewrap)"
    if bwrap:
        missing = "setpriv is not installed (Debian: apt-get install util-linux)"
    assert missing in output
