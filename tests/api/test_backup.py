"""`calchub admin backup` while a server runs and writes, then `calchub admin restore` into an
empty site and a server started on it: accounts, API keys, projects and files come back."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from calchub.db.tables import accounts, api_keys, project_users, projects
from tests.api.test_cli import ServeProcess, assert_failed_cleanly, clean_env, run_cli
from tests.api.test_proxy import reachable_roots
from tests.harness import Database, Loop, free_port, throwaway_database


class Hub:
    """A `calchub serve` on its own data folder, database and project homes."""

    def __init__(self, data_dir: Path, url: str, disk: str = "none") -> None:
        self.env = clean_env(
            CALCHUB_DATA_DIR=str(data_dir),
            CALCHUB_DATABASE_URL=url,
            CALCHUB_PROJECT_DISK=disk,
            **reachable_roots(),
        )
        self.projects_root = Path(self.env["CALCHUB_PROJECTS_ROOT"])
        self.url = url
        self.serve: ServeProcess | None = None

    def start(self) -> httpx.Client:
        port = free_port()
        self.serve = ServeProcess(self.env, "--port", str(port))
        self.serve.wait_started()
        return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def stop(self) -> None:
        if self.serve is not None:
            self.serve.stop()


def call(http: httpx.Client, key: str, event: str, **body: Any) -> dict[str, Any]:
    reply: dict[str, Any] = http.post(f"/api/v1/{event}", auth=(key, ""), json=body).json()
    return reply


def new_account(http: httpx.Client, admin_key: str) -> tuple[str, str]:
    reply = call(
        http,
        admin_key,
        "create_account",
        first_name="Backed",
        last_name="Up",
        email_address=f"b-{uuid.uuid4().hex[:10]}@example.org",
        password="correct horse",
        agreed_to_terms=True,
        get_api_key=True,
    )
    assert reply.get("event") == "account_created", reply
    return reply["account_id"], reply["api_key"]


def write(http: httpx.Client, key: str, project_id: str, path: str, content: str) -> None:
    reply = call(
        http, key, "write_text_file_to_project", project_id=project_id, path=path, content=content
    )
    assert reply.get("event") == "file_written_to_project", reply


def tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file below `root`: owner, mode and content."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            info = path.lstat()
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            found[str(path.relative_to(root))] = (info.st_uid, info.st_mode, content)
    return found


def rows(db: Database, table: Any, column: Any, ids: list[str]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute(select(table).where(column.in_(ids)).order_by(*table.c))]


class Writer(threading.Thread):
    """Keeps creating accounts and writing files on the running server."""

    def __init__(self, http_url: str, admin_key: str, project_id: str) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=http_url, timeout=60)
        self.admin_key, self.project_id = admin_key, project_id
        self.created: list[tuple[str, str]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set() and n < 2000:
                self.created.append(new_account(self.http, self.admin_key))
                write(self.http, self.admin_key, self.project_id, f"busy/{n}.txt", "x" * n)
                n += 1
        except BaseException as exc:
            self.error = exc
        finally:
            self.http.close()

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while len(self.created) < count:
            assert self.error is None and time.monotonic() < deadline, self.error
            time.sleep(0.05)


@pytest.fixture
def databases(tmp_path: Path, loop: Loop) -> Iterator[tuple[str, str]]:
    with (
        throwaway_database(tmp_path / "old" / "calchub.db", loop) as old,
        throwaway_database(tmp_path / "new" / "calchub.db", loop) as new,
    ):
        yield old, new


def test_backup_of_a_busy_server_restores_into_a_new_site(
    tmp_path: Path, databases: tuple[str, str], loop: Loop
) -> None:
    old_url, new_url = databases
    # The old site keeps its homes as disk images (where it can: as root), which the
    # backup copies as folders; the new one keeps folders.
    old = Hub(tmp_path / "old", old_url, "image" if os.geteuid() == 0 else "none")
    new = Hub(tmp_path / "new", new_url)
    dest = tmp_path / "backup"
    try:
        http = old.start()
        assert old.serve is not None and old.serve.api_key
        admin_key = old.serve.api_key
        user_id, user_key = new_account(http, admin_key)
        cli_key = json.loads(
            run_cli(old.env, "admin", "api-key", "create", user_id, "--json").stdout
        )["api_key"]
        project = call(http, user_key, "create_project", title="Kept")["project_id"]
        files = {"notes.md": "# kept\n", "deep/er/data.csv": "a,b\n1,2\n", "é ü.txt": "ünï"}
        for path, content in files.items():
            write(http, user_key, project, path, content)
        busy = call(http, admin_key, "create_project", title="Busy")["project_id"]

        writer = Writer(str(http.base_url), admin_key, busy)
        writer.start()
        writer.wait_for(3)
        before_backup = list(writer.created)
        result = run_cli(old.env, "admin", "backup", str(dest))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"Backed up to {dest}")
        writer.wait_for(len(writer.created) + 3)
        writer.stop.set()
        writer.join(timeout=60)
        assert writer.error is None, writer.error
        http.close()
        old.stop()

        manifest = json.loads((dest / "manifest.json").read_text())
        assert manifest["format"] == 1 and manifest["projects"]["homes"] == 2
        assert oct((dest).stat().st_mode & 0o777) == "0o700"

        # Restore refuses a site that is in use, and then fills an empty one.
        message = assert_failed_cleanly(run_cli(old.env, "admin", "restore", str(dest)))
        assert "not empty" in message and "--force" in message
        restored = run_cli(new.env, "admin", "restore", str(dest), "--json")
        assert restored.returncode == 0, restored.stderr
        assert json.loads(restored.stdout) == manifest

        old_db, new_db = Database(old_url, loop), Database(new_url, loop)
        try:
            kept_ids = [user_id]
            for table, column in (
                (accounts, accounts.c.account_id),
                (api_keys, api_keys.c.account_id),
                (project_users, project_users.c.account_id),
            ):
                assert rows(new_db, table, column, kept_ids) == rows(
                    old_db, table, column, kept_ids
                )
            assert rows(new_db, projects, projects.c.project_id, [project]) == rows(
                old_db, projects, projects.c.project_id, [project]
            )
            restored_ids = {r.account_id for r in new_db.execute(select(accounts.c.account_id))}
            all_ids = {r.account_id for r in old_db.execute(select(accounts.c.account_id))}
            assert {a for a, _ in before_backup} <= restored_ids <= all_ids
        finally:
            old_db.close()
            new_db.close()
        restored_home = tree(new.projects_root / project)
        assert restored_home == tree(dest / "projects" / project)
        assert {path: content for path, (_, _, content) in restored_home.items()} == {
            path: content.encode() for path, content in files.items()
        }
        home = next(iter(restored_home.values()))
        assert home[0] >= 1_000_000 or os.geteuid() != 0  # the project's own uid

        http = new.start()
        assert new.serve is not None and new.serve.api_key is None  # no new admin
        for key in (admin_key, user_key, cli_key):
            assert call(http, key, "ping")["event"] == "pong"
        for account_id, key in writer.created:
            if account_id in restored_ids:
                assert call(http, key, "ping")["event"] == "pong"
        for path, content in files.items():
            reply = call(
                http, user_key, "read_text_file_from_project", project_id=project, path=path
            )
            assert reply.get("content") == content, reply
        write(http, user_key, project, "after-restore.txt", "still works")
        http.close()
    finally:
        old.stop()
        new.stop()
