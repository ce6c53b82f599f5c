"""copy_path_between_projects, copy_path_status and copy_path_delete over real HTTP,
including copies that outlive the server which accepted them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from calchub.db.tables import copy_paths
from calchub.db.types import utcnow
from tests.api.expect import missing, unexpected
from tests.api.project_files import (
    add_member,
    copy_row,
    create_project,
    new_id,
    read,
    sh,
    wait_finished,
    write,
)
from tests.conftest import User
from tests.harness import ApiClient, Database, Loop, Server, throwaway_database

NOTE = "Query copy_path_status with the copy_path_id to learn if the copy operation was successful."


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user()


@pytest.fixture
def src(api: ApiClient, owner: User) -> str:
    project_id = create_project(api, owner.api_key)
    write(api, owner.api_key, project_id, "doc.txt", "hello")
    write(api, owner.api_key, project_id, "B2/doc2.txt", "two")
    write(api, owner.api_key, project_id, "B2/sub/doc3.txt", "three")
    return project_id


@pytest.fixture
def dst(api: ApiClient, owner: User) -> str:
    return create_project(api, owner.api_key)


def _copy(api: ApiClient, key: str, src: str, dst: str, src_path: str, **fields: Any) -> Any:
    body = {"src_project_id": src, "target_project_id": dst, "src_path": src_path, **fields}
    return api.call("copy_path_between_projects", key, body)


def _ok(reply: Any) -> None:
    assert reply.body == {"event": "success", "id": reply["id"]}, reply.body


# --- copying -------------------------------------------------------------------------------


def test_copy_file_waits_and_records_row(
    api: ApiClient, owner: User, src: str, dst: str, db: Database
) -> None:
    reply = _copy(api, owner.api_key, src, dst, "doc.txt", id="m1")
    assert reply.body == {"event": "success", "id": "m1"}
    assert read(api, owner.api_key, dst, "doc.txt") == "hello"
    listed = api.call("copy_path_status", owner.api_key, {"src_project_id": src, "pending": False})
    [op] = listed["data"]
    assert op["source_path"] == "doc.txt" and op["target_path"] == "doc.txt"
    assert op["error"] is None and op["finished"] and op["started"]
    assert op["progress"]["state"] == "done"
    assert copy_row(db, op["copy_path_id"]).account_id == owner.account_id


def test_copy_targets_and_trailing_slashes(api: ApiClient, owner: User, src: str, dst: str) -> None:
    key = owner.api_key
    _ok(_copy(api, key, src, dst, "doc.txt", target_path="renamed.txt"))
    assert read(api, key, dst, "renamed.txt") == "hello"
    _ok(_copy(api, key, src, dst, "doc.txt", target_path="DIR3/"))
    assert read(api, key, dst, "DIR3/doc.txt") == "hello"
    _ok(_copy(api, key, src, dst, "B2/", target_path="DIR4/"))
    assert read(api, key, dst, "DIR4/doc2.txt") == "two"
    assert read(api, key, dst, "DIR4/sub/doc3.txt") == "three"
    _ok(_copy(api, key, src, dst, "B2", target_path="DIR5"))
    assert read(api, key, dst, "DIR5/doc2.txt") == "two"
    _ok(_copy(api, key, src, dst, "B2"))  # target_path defaults to src_path
    assert read(api, key, dst, "B2/sub/doc3.txt") == "three"
    _ok(_copy(api, key, src, src, "doc.txt", target_path="again/doc.txt"))  # same project
    assert read(api, key, src, "again/doc.txt") == "hello"


def test_overwrite_newer_and_backup(api: ApiClient, owner: User, src: str, dst: str) -> None:
    key = owner.api_key
    write(api, key, dst, "doc.txt", "newer in target")
    sh(api, key, dst, "touch -d 2030-01-01 doc.txt")
    _ok(_copy(api, key, src, dst, "doc.txt"))
    assert read(api, key, dst, "doc.txt") == "newer in target"  # --update keeps newer files
    _ok(_copy(api, key, src, dst, "doc.txt", overwrite_newer=True, backup=True))
    assert read(api, key, dst, "doc.txt") == "hello"
    assert read(api, key, dst, "doc.txt~") == "newer in target"


def test_delete_missing_and_exclude(api: ApiClient, owner: User, src: str, dst: str) -> None:
    key = owner.api_key
    write(api, key, src, "B2/x.sage-history", "history")
    write(api, key, src, "B2/skip.log", "log")
    write(api, key, dst, "T/extra.txt", "extra")
    _ok(_copy(api, key, src, dst, "B2/", target_path="T/", exclude=["*.log"], exclude_history=True))
    assert read(api, key, dst, "T/extra.txt") == "extra"
    assert read(api, key, dst, "T/doc2.txt") == "two"
    assert read(api, key, dst, "T/skip.log") is None
    assert read(api, key, dst, "T/x.sage-history") is None
    _ok(_copy(api, key, src, dst, "B2/", target_path="T/", delete_missing=True))
    assert read(api, key, dst, "T/extra.txt") is None
    assert read(api, key, dst, "T/skip.log") == "log"


def test_copy_failure_is_reported(api: ApiClient, owner: User, src: str, dst: str) -> None:
    reply = _copy(api, owner.api_key, src, dst, "no-such-file")
    assert reply.event == "error" and "no-such-file" in reply["error"], reply.body
    reply = _copy(api, owner.api_key, src, dst, "../../etc/passwd")
    assert reply.body["error"] == "source path must be contained in project home dir"
    listed = api.call("copy_path_status", owner.api_key, {"src_project_id": src, "failed": True})
    assert len(listed["data"]) == 2 and all(op["error"] for op in listed["data"])


def test_symlinks_are_copied_as_links(
    api: ApiClient, owner: User, src: str, dst: str, make_user: Callable[..., User]
) -> None:
    other = make_user()
    secret_project = create_project(api, other.api_key)
    write(api, other.api_key, secret_project, "secret.txt", "top secret")
    sh(
        api,
        owner.api_key,
        src,
        f"mkdir -p L && ln -s /projects/{secret_project}/secret.txt L/secret "
        "&& ln -s /etc/hostname L/host && ln -s ../doc.txt L/up",
    )
    _ok(_copy(api, owner.api_key, src, dst, "L/", target_path="L/"))
    listing = sh(api, owner.api_key, dst, "cd L && for f in *; do stat -c '%F %N' $f; done")
    assert listing.count("symbolic link") == 3, listing
    assert "top secret" not in sh(api, owner.api_key, dst, "cat L/secret 2>&1 || true")
    # A link named on its own is copied as the link too, never as the file it points to;
    # one pointing into another project does not even resolve in the source's view.
    _ok(_copy(api, owner.api_key, src, dst, "L/host", target_path="one"))
    assert sh(api, owner.api_key, dst, "stat -c %F one").startswith("symbolic link")
    reply = _copy(api, owner.api_key, src, dst, "L/secret", target_path="two")
    assert reply.event == "error" and "ENOENT" in reply["error"]
    assert read(api, owner.api_key, dst, "two") is None


# --- permissions and bad input -------------------------------------------------------------


def test_copy_permissions(
    api: ApiClient, owner: User, src: str, dst: str, db: Database, make_user: Callable[..., User]
) -> None:
    stranger, viewer = make_user(), make_user()
    add_member(db, src, viewer.account_id, "viewer")
    add_member(db, dst, viewer.account_id, "viewer")
    blocked_write = f"ACCESS BLOCKED -- No write access to target project -- {dst}"
    blocked_read = f"ACCESS BLOCKED -- No read access to source project -- {src}"
    assert _copy(api, stranger.api_key, src, dst, "doc.txt")["error"] == blocked_write
    assert _copy(api, viewer.api_key, src, dst, "doc.txt")["error"] == blocked_write
    mine = create_project(api, stranger.api_key)
    assert _copy(api, stranger.api_key, src, mine, "doc.txt")["error"] == blocked_read
    # A viewer may copy out of a project into one of their own.
    theirs = create_project(api, viewer.api_key)
    _ok(_copy(api, viewer.api_key, src, theirs, "doc.txt"))
    assert read(api, viewer.api_key, theirs, "doc.txt") == "hello"
    before = len(db.execute(copy_paths.select()))
    assert _copy(api, stranger.api_key, src, dst, "doc.txt").event == "error"
    assert len(db.execute(copy_paths.select())) == before  # refused copies leave no row


def test_copy_bad_input(api: ApiClient, owner: User, src: str, dst: str) -> None:
    key = owner.api_key
    assert _copy(api, key, "nope", dst, "a")["error"] == "src_project_id='nope' not valid"
    assert _copy(api, key, src, "nope", "a")["error"] == "target_project_id='nope' not valid"
    reply = api.call("copy_path_between_projects", key, {"src_project_id": src})
    assert reply.status == 400 and reply.body == missing("src_path")
    reply = _copy(api, key, src, dst, "a", bogus=1)
    assert reply.status == 400 and reply.body == unexpected("bogus")
    reply = _copy(api, key, src, dst, "doc.txt", scheduled="next tuesday")
    assert reply.event == "error" and "scheduled='next tuesday'" in reply["error"]


# --- not waiting, status, scheduling and deleting ------------------------------------------


def test_no_wait_returns_id_then_status_shows_finished(
    api: ApiClient, owner: User, src: str, dst: str
) -> None:
    reply = _copy(api, owner.api_key, src, dst, "B2", wait_until_done=False)
    assert reply.event == "copy_path_between_projects_response", reply.body
    assert reply["note"] == NOTE
    copy_id = reply["copy_path_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = api.call("copy_path_status", owner.api_key, {"copy_path_id": copy_id})
        assert status.event == "copy_path_status_response", status.body
        if status["data"]["finished"]:
            break
        time.sleep(0.2)
    op = status["data"]
    assert set(op) == {
        "copy_path_id", "time", "source_project_id", "source_path", "target_project_id",
        "target_path", "overwrite_newer", "delete_missing", "backup", "started", "finished",
        "scheduled", "error", "exclude", "progress",
    }  # fmt: skip
    assert op["copy_path_id"] == copy_id and op["error"] is None and op["scheduled"] is None
    assert op["finished"].endswith("Z")
    assert read(api, owner.api_key, dst, "B2/doc2.txt") == "two"


def test_form_body_without_waiting(api: ApiClient, owner: User, src: str, dst: str) -> None:
    form = {
        "src_project_id": src,
        "target_project_id": dst,
        "src_path": "doc.txt",
        "wait_until_done": "false",
    }
    reply = api.call("copy_path_between_projects", owner.api_key, form=form)
    assert reply.event == "copy_path_between_projects_response", reply.body


def test_scheduled_copy_then_delete(
    api: ApiClient, owner: User, src: str, dst: str, make_user: Callable[..., User]
) -> None:
    when = (utcnow() + timedelta(days=1)).isoformat()
    reply = _copy(api, owner.api_key, src, dst, "doc.txt", scheduled=when)
    assert reply.event == "copy_path_between_projects_response", reply.body
    copy_id = reply["copy_path_id"]
    time.sleep(1.5)  # a scheduler round passes: a copy due tomorrow is not started
    op = api.call("copy_path_status", owner.api_key, {"copy_path_id": copy_id})["data"]
    assert op["scheduled"] and op["started"] is None and op["finished"] is None
    pending = api.call("copy_path_status", owner.api_key, {"target_project_id": dst})["data"]
    assert [o["copy_path_id"] for o in pending] == [copy_id]
    stranger = make_user()
    reply = api.call("copy_path_delete", stranger.api_key, {"copy_path_id": copy_id})
    assert reply["error"].startswith("ACCESS BLOCKED")
    reply = api.call("copy_path_delete", owner.api_key, {"copy_path_id": copy_id})
    assert reply.body == {
        "event": "copy_path_status_response",
        "id": reply["id"],
        "data": f"copy_path_id = '{copy_id}' deleted",
    }
    again = api.call("copy_path_delete", owner.api_key, {"copy_path_id": copy_id})
    assert again["error"] == f"Copy operation '{copy_id}' either does not exist or already finished"
    assert api.call("copy_path_delete", owner.api_key, {})["error"] == "ERROR: copy_path_id missing"
    assert read(api, owner.api_key, dst, "doc.txt") is None


def test_scheduled_in_the_past_runs(api: ApiClient, owner: User, src: str, dst: str) -> None:
    reply = _copy(api, owner.api_key, src, dst, "doc.txt", scheduled="2020-01-01T00:00:00Z")
    copy_id = reply["copy_path_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        op = api.call("copy_path_status", owner.api_key, {"copy_path_id": copy_id})["data"]
        if op["finished"]:
            break
        time.sleep(0.2)
    assert op["finished"] and op["error"] is None
    reply = api.call("copy_path_delete", owner.api_key, {"copy_path_id": copy_id})
    assert "either does not exist or already finished" in reply["error"]


def test_status_errors_and_ranges(
    api: ApiClient, owner: User, src: str, dst: str, make_user: Callable[..., User]
) -> None:
    key = owner.api_key
    assert api.call("copy_path_status", key, {})["error"] == (
        "'copy_path_id' (UUID) of a copy operation or "
        "'src_project_id/target_project_id' must be defined"
    )
    unknown = new_id()
    assert api.call("copy_path_status", key, {"copy_path_id": unknown})["error"] == (
        f"Can't find copy operation with ID={unknown}"
    )
    assert api.call("copy_path_status", key, {"src_project_id": "x"})["error"] == (
        "invalid src_project_id=x"
    )
    assert api.call("copy_path_status", key, {"target_project_id": "y"})["error"] == (
        "invalid target_project_id=y"
    )
    for field, value, high in (("limit", 1001, 1000), ("offset", -1, 100000)):
        reply = api.call("copy_path_status", key, {"src_project_id": src, field: value})
        assert reply["error"] == f"ILLEGAL VALUE {field}='{value}' (must be in [0, {high}])"
    reply = api.call("copy_path_status", key, form={"src_project_id": src, "limit": "5000"})
    assert reply["error"] == "ILLEGAL VALUE limit='5000' (must be in [0, 1000])"
    assert api.call("copy_path_status", key, {"id": "x"}).body == unexpected("id")
    stranger = make_user()
    reply = api.call("copy_path_status", stranger.api_key, {"src_project_id": src})
    assert reply["error"] == f"ACCESS BLOCKED -- No read access to source project -- {src}"
    copy_id = _copy(api, key, src, dst, "doc.txt", wait_until_done=False)["copy_path_id"]
    reply = api.call("copy_path_status", stranger.api_key, {"copy_path_id": copy_id})
    assert reply["error"].startswith("ACCESS BLOCKED")


def test_status_list_filters_order_and_paging(
    api: ApiClient, owner: User, src: str, dst: str
) -> None:
    key = owner.api_key
    for path in ("doc.txt", "B2", "doc.txt"):
        _ok(_copy(api, key, src, dst, path))
    done = api.call("copy_path_status", key, {"src_project_id": src, "target_project_id": dst,
                                               "pending": False})["data"]  # fmt: skip
    assert [op["source_path"] for op in done] == ["doc.txt", "B2", "doc.txt"]
    assert done[0]["time"] >= done[1]["time"] >= done[2]["time"]
    only = api.call(
        "copy_path_status", key, {"src_project_id": src, "src_path": "B2", "pending": False}
    )["data"]
    assert [op["source_path"] for op in only] == ["B2"]
    page = api.call(
        "copy_path_status",
        key,
        {"target_project_id": dst, "pending": False, "limit": 1, "offset": 1},
    )["data"]
    assert [op["copy_path_id"] for op in page] == [done[1]["copy_path_id"]]
    assert api.call("copy_path_status", key, {"src_project_id": src})["data"] == []


# --- durability ----------------------------------------------------------------------------


def test_copy_interrupted_by_restart_completes(tmp_path: Path) -> None:
    """A copy whose hub died mid-way (row started, heartbeat stale) is finished by the
    server that runs next on the same database and project storage."""
    loop = Loop()
    try:
        with throwaway_database(tmp_path / "restart.db", loop) as url:
            first = Server(tmp_path / "data", url, None)
            admin = first.start()
            assert admin
            client = ApiClient(first.url)
            try:
                reply = client.call(
                    "create_account",
                    admin,
                    {
                        "first_name": "R",
                        "last_name": "S",
                        "email_address": f"restart-{new_id()[:8]}@example.com",
                        "password": "correct horse",
                        "agreed_to_terms": True,
                        "get_api_key": True,
                    },
                )
                key = reply["api_key"]
                a, b = create_project(client, key), create_project(client, key)
                for n in range(50):
                    write(client, key, a, f"tree/d{n % 5}/f{n}.txt", f"file {n}")
            finally:
                client.close()
                first.stop()
            database = Database(url, loop)
            copy_id = new_id()
            old = utcnow() - timedelta(minutes=10)
            database.execute(
                insert(copy_paths).values(
                    id=copy_id,
                    time=old,
                    source_project_id=a,
                    source_path="tree",
                    target_project_id=b,
                    target_path="copied",
                    overwrite_newer=False,
                    delete_missing=False,
                    backup=False,
                    public=False,
                    started=old,
                    heartbeat=old,
                    worker="a-hub-that-died",
                )
            )
            second = Server(tmp_path / "data", url, None)
            # Same project storage as the first server: it is the same installation.
            for name in ("CALCHUB_PROJECTS_ROOT", "CALCHUB_RUNTIME_ROOT"):
                second.env[name] = first.env[name]
            second.start()
            client = ApiClient(second.url)
            try:
                row = wait_finished(database, copy_id)
                assert row.error is None and row.worker != "a-hub-that-died"
                assert read(client, key, b, "copied/d3/f48.txt") == "file 48"
                assert sh(client, key, b, "find copied -type f | wc -l").strip() == "50"
            finally:
                client.close()
                second.stop()
                database.close()
    finally:
        loop.close()


def test_copy_progress_and_takeover_after_the_hub_is_killed(tmp_path: Path) -> None:
    """A running copy reports file and byte counts; when its hub is killed outright, the
    next server on the same database and storage takes it over and finishes it."""
    files = 90_000
    loop = Loop()
    try:
        with throwaway_database(tmp_path / "killed.db", loop) as url:
            first = Server(tmp_path / "data", url, None)
            # Take over soon after the heartbeats stop, instead of after a minute.
            first.env["CALCHUB_COPY_STALE_AFTER_S"] = "4"
            admin = first.start()
            assert admin
            database = Database(url, loop)
            client = ApiClient(first.url)
            try:
                reply = client.call(
                    "create_account",
                    admin,
                    {
                        "first_name": "K",
                        "last_name": "H",
                        "email_address": f"killed-{new_id()[:8]}@example.com",
                        "password": "correct horse",
                        "agreed_to_terms": True,
                        "get_api_key": True,
                    },
                )
                key = reply["api_key"]
                a, b = create_project(client, key), create_project(client, key)
                made = sh(
                    client,
                    key,
                    a,
                    "mkdir tree && cd tree && for d in $(seq 0 299); do mkdir d$d; "
                    "for f in $(seq 0 299); do echo $d-$f > d$d/f$f; done; done; "
                    "find . -type f | wc -l",
                    # 90,000 files take a while on a busy machine.
                    timeout=600,
                )
                assert made.strip() == str(files)
                reply = _copy(
                    client, key, a, b, "tree", target_path="copied", wait_until_done=False
                )
                copy_id = reply["copy_path_id"]
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    op = client.call("copy_path_status", key, {"copy_path_id": copy_id})["data"]
                    assert not op["finished"], f"copy ended before the hub was killed: {op}"
                    if op["started"] and op["progress"].get("files", 0) > 0:
                        break
                    time.sleep(0.05)
                progress = op["progress"]
                assert progress["state"] == "running" and progress["bytes"] > 0, progress
                assert 0 <= progress["percent"] <= 100 and progress["elapsed_s"] >= 0, progress
            finally:
                client.close()
            assert first.process is not None
            first.process.kill()
            first.process.wait()
            assert copy_row(database, copy_id).finished is None

            second = Server(tmp_path / "data", url, None)
            # Same project storage as the first server: it is the same installation.
            for name in (
                "CALCHUB_PROJECTS_ROOT",
                "CALCHUB_RUNTIME_ROOT",
                "CALCHUB_COPY_STALE_AFTER_S",
            ):
                second.env[name] = first.env[name]
            second.start()
            client = ApiClient(second.url)
            try:
                row = wait_finished(database, copy_id, timeout=120)
                assert row.error is None and row.progress["state"] == "done", row
                assert read(client, key, b, "copied/d299/f299.txt") is None
                assert read(client, key, b, "copied/d299/f299") == "299-299\n"
                listed = sh(client, key, b, "find copied -type f -name 'f*' | wc -l")
                assert listed.strip() == str(files)
                digest = "cd {} && find . -type f -name 'f*' | sort | xargs cat | md5sum"
                same = sh(client, key, b, digest.format("copied"))
                assert same == sh(client, key, a, digest.format("tree"))
            finally:
                client.close()
                second.stop()
                database.close()
    finally:
        loop.close()
