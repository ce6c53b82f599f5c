"""The server's files are its own: the data folder, the database with its journal files,
project homes' folder and backups are private to the server's user (0700 folders, 0600
files), so no other local user reads email addresses or password hashes."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.conftest import User
from tests.harness import ApiClient, Server, backend


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _others_may_enter(path: Path) -> list[str]:
    """Everything under `path` that a user other than the owner could read or enter."""
    found = []
    for item in [path, *path.rglob("*")]:
        if not item.is_symlink() and _mode(item) & 0o077:
            found.append(f"{item} {oct(_mode(item))}")
    return found


def test_data_folder_and_database_are_private(server: Server, api: ApiClient, user: User) -> None:
    # Something was written, so SQLite has its journal files open.
    reply = api.call("create_project", user.api_key, {"title": "private"})
    assert reply.event == "project_created", reply.body
    assert _mode(server.data_dir) == 0o700
    if backend() == "sqlite":
        database = Path(server.database_url.removeprefix("sqlite:///"))
        assert database.exists()
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{database}{suffix}")
            if path.exists():
                assert _mode(path) == 0o600, path
    assert _others_may_enter(server.data_dir) == []
    assert _mode(server.projects_root) & 0o077 == 0


def test_backups_are_private(server: Server, api: ApiClient, user: User, tmp_path: Path) -> None:
    project = api.call("create_project", user.api_key, {"title": "backed up"})["project_id"]
    written = api.call(
        "write_text_file_to_project",
        user.api_key,
        {"project_id": project, "path": "notes.txt", "content": "private"},
    )
    assert written.event == "file_written_to_project", written.body
    dest = tmp_path / "backup"
    server.cli("admin", "backup", str(dest))
    homes = dest / "projects"
    assert (homes / project / "notes.txt").exists()
    # Inside the homes every file keeps the mode its project gave it, so a restore brings
    # back exactly what was there; the folder holding them is closed to everyone else.
    assert _mode(homes) & 0o077 == 0
    outside_homes = [p for p in [dest, *dest.rglob("*")] if homes not in [p, *p.parents]]
    assert [f"{p} {oct(_mode(p))}" for p in outside_homes if _mode(p) & 0o077] == []
