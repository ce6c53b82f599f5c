"""The disk quota over real HTTP on a server that keeps homes as disk images: a command that
writes too much gets its normal result with the kernel's error, a file write says the quota is
exceeded, and a larger quota (an admin's upgrade) takes effect when the project restarts."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from calchub.db.tables import projects
from calchub.runtime import disk_images
from tests.harness import ApiClient, Database, Loop, Server, throwaway_database


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, ApiClient, str, Database]]:
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("disk images need root")
    loop = Loop()
    try:
        folder: Path = tmp_path_factory.mktemp("images")
        with throwaway_database(folder / "calchub.db", loop) as url:
            server = Server(folder / "data", url, None)
            server.env["CALCHUB_PROJECT_DISK"] = "image"
            key = server.start()
            assert key
            db = Database(url, loop)
            api = ApiClient(server.url)
            try:
                server.cli("admin", "setting", "default_quota_disk_mb", "20")
                yield server, api, key, db
            finally:
                api.close()
                db.close()
                server.stop()
    finally:
        loop.close()


def _exec(api: ApiClient, key: str, project_id: str, script: str) -> Any:
    body = {
        "project_id": project_id,
        "command": script,
        "bash": True,
        "timeout": 60,
        "err_on_exit": False,
    }
    reply = api.call("project_exec", key, body)
    assert reply.event == "project_exec_output", reply.body
    return reply


def _act(db: Database, project_id: str, action: str) -> None:
    """An action request, carried out by the server's scheduler, as CoCalc's are."""
    db.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(action_request={"action": action}, action_state="pending")
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = db.execute(select(projects).where(projects.c.project_id == project_id))[0]
        if row.action_state == "done":
            assert "err" not in row.action_request, row.action_request
            return
        time.sleep(0.2)
    raise AssertionError(f"{action} was not carried out")


def test_the_quota_binds_commands_and_grows_on_restart(
    site: tuple[Server, ApiClient, str, Database],
) -> None:
    server, api, key, db = site
    project_id = str(api.call("create_project", key, {"title": "full"})["project_id"])
    # The attack: several files, each under the quota, together over it.
    reply = _exec(api, key, project_id, "for i in 1 2 3; do head -c 15M /dev/zero > big$i; done")
    assert reply["exit_code"] != 0
    assert "No space left on device" in reply["stderr"]
    assert int(_exec(api, key, project_id, "du -sm .")["stdout"].split()[0]) <= 21
    reply = api.call(
        "write_text_file_to_project",
        key,
        {"project_id": project_id, "path": "more.txt", "content": "x" * 2_000_000},
    )
    assert reply.event == "error" and reply["error"].startswith("disk quota exceeded")

    # An admin's upgrade of 40 MB: the running project keeps its disk until it restarts.
    db.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(settings={"disk_quota": 40})
    )
    size = "df --output=size -B1M . | tail -1"
    assert int(_exec(api, key, project_id, size)["stdout"]) < 30
    _act(db, project_id, "restart")
    assert int(_exec(api, key, project_id, size)["stdout"]) > 50
    reply = _exec(api, key, project_id, "head -c 15M /dev/zero > big3 && du -sm . | cut -f1")
    assert 30 < int(reply["stdout"]) <= 61, reply.body

    # Stopped: nothing mounted, no loop device; the image stays (a deleted project can be
    # undeleted, so its files must stay too).
    _act(db, project_id, "stop")
    image = disk_images.image_path(server.projects_root, project_id)
    # The kernel lets the loop device go a moment after the sandbox's last mount of it.
    for _ in range(100):
        attached = subprocess.run(
            ["losetup", "-n", "-j", str(image)], capture_output=True, text=True, check=True
        )
        if not attached.stdout:
            break
        time.sleep(0.05)
    assert image.is_file() and attached.stdout == ""
