"""Public reads of a stopped project over real HTTP: public_get_text_file and
public_get_directory_listing are served by a one-shot reader, and the project stays stopped
(its state and activity unchanged, no process of its uid left behind)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from calchub.db.tables import projects
from tests.api.project_files import create_project, publish, sh
from tests.conftest import User
from tests.harness import ApiClient, Database, Reply, Server

SECRET = "stopped-secret-9d1"
FILES = (
    f"mkdir -p pub/sub private && echo '{SECRET}' > private.txt && echo hello > pub/a.txt "
    "&& echo deeper > pub/sub/b.txt && echo hid > pub/.hidden "
    "&& ln -s ../private.txt pub/to_secret && ln -s /etc/passwd pub/to_passwd "
    "&& ln -s /etc pub/to_etc && ln -s ../private pub/to_private "
    "&& head -c 21000000 /dev/zero > pub/big.bin"
)


def _row(db: Database, project_id: str) -> Any:
    return db.execute(select(projects).where(projects.c.project_id == project_id))[0]


def _stop(api: ApiClient, key: str, db: Database, project_id: str) -> None:
    stop = {"projects": {"project_id": project_id, "action_request": {"action": "stop"}}}
    assert api.call("query", key, {"query": stop}).event == "query"
    # Wait for this request to be carried out, not only for "opened": a project already
    # stopped is "opened" before the request's own stop moves it through "stopping".
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = _row(db, project_id)
        if row.action_state == "done" and row.run_state == "opened":
            break
        time.sleep(0.1)
    row = _row(db, project_id)
    assert (row.action_state, row.run_state) == ("done", "opened")


def _processes_of(project_id: str) -> list[int]:
    """Processes whose command line names the project (its sandbox's, a reader's): uids
    are not unique to one test server on a shared machine, project ids are."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if project_id.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def owner(make_module_user: Callable[[], User]) -> User:
    return make_module_user()


@pytest.fixture(scope="module")
def make_module_user(api: ApiClient, admin_key: str) -> Callable[[], User]:
    def make() -> User:
        reply = api.call(
            "create_account",
            admin_key,
            {
                "first_name": "Stopped",
                "last_name": "Owner",
                "email_address": f"stopped-{os.urandom(4).hex()}@example.com",
                "password": "correct horse",
                "agreed_to_terms": True,
                "get_api_key": True,
            },
        )
        assert reply.event == "account_created", reply.body
        return User(reply["account_id"], reply["api_key"], "", "", "", "")

    return make


@pytest.fixture(scope="module")
def stopped(api: ApiClient, owner: User, db: Database) -> Iterator[str]:
    """`pub/` public, with links out of it and a file over the public cap; stopped."""
    project_id = create_project(api, owner.api_key)
    sh(api, owner.api_key, project_id, FILES)
    publish(db, project_id, "pub")
    _stop(api, owner.api_key, db, project_id)
    yield project_id
    _stop(api, owner.api_key, db, project_id)


@pytest.fixture
def stays_stopped(db: Database, stopped: str) -> Iterator[None]:
    """The project is stopped before the test and exactly as stopped after it."""
    before = _row(db, stopped)
    assert before.run_state == "opened"
    assert _processes_of(stopped) == []
    yield
    after = _row(db, stopped)
    assert after.run_state == "opened"
    assert after.run_state_time == before.run_state_time  # no start was even begun
    assert after.last_activity == before.last_activity
    assert _processes_of(stopped) == []


def _get(api: ApiClient, project_id: str, path: str) -> Reply:
    return api.call("public_get_text_file", "", {"project_id": project_id, "path": path})


def _list(api: ApiClient, project_id: str, path: str, **extra: object) -> Reply:
    body = {"project_id": project_id, "path": path, **extra}
    return api.call("public_get_directory_listing", "", body)


def _not_public(project_id: str, path: str) -> str:
    return f"path '{path}' of project with id '{project_id}' is not public"


@pytest.mark.usefixtures("stays_stopped")
def test_public_file_and_listing_of_a_stopped_project(api: ApiClient, stopped: str) -> None:
    reply = _get(api, stopped, "pub/a.txt")
    assert reply.body == {
        "event": "public_text_file_contents",
        "id": reply["id"],
        "data": "hello\n",
    }
    assert _get(api, stopped, "pub/sub/b.txt")["data"] == "deeper\n"
    listing = _list(api, stopped, "pub")
    assert listing.event == "public_directory_listing", listing.body
    names = [entry["name"] for entry in listing["result"]["files"]]
    assert names == sorted(
        ["a.txt", "big.bin", "sub", "to_etc", "to_passwd", "to_private", "to_secret"]
    )
    hidden = _list(api, stopped, "pub", hidden=True)["result"]["files"]
    assert ".hidden" in [entry["name"] for entry in hidden]
    # The home shows only the way to the public folder.
    home = _list(api, stopped, "")["result"]["files"]
    assert [entry["name"] for entry in home] == ["pub"]


@pytest.mark.usefixtures("stays_stopped")
def test_links_out_of_public_places_are_refused(api: ApiClient, stopped: str) -> None:
    for path in ("pub/to_secret", "pub/to_passwd", "pub/to_private", "pub/to_etc/passwd"):
        reply = _get(api, stopped, path)
        assert reply["error"] == _not_public(stopped, path), path
        assert SECRET not in str(reply.body) and "root:" not in str(reply.body)
    for path in ("pub/to_etc", "pub/to_private"):
        assert _list(api, stopped, path)["error"] == "not_public", path


@pytest.mark.usefixtures("stays_stopped")
def test_private_missing_and_big_files(api: ApiClient, stopped: str) -> None:
    for path in ("private.txt", "pub/../private.txt", "/etc/passwd"):
        assert _get(api, stopped, path)["error"] == _not_public(stopped, path), path
    assert _list(api, stopped, "private")["error"] == "not_public"
    missing = _get(api, stopped, "pub/nope.txt")
    assert missing["error"] == (
        f"ENOENT: no such file or directory, open '/projects/{stopped}/pub/nope.txt'"
    )
    assert "ENOENT" in _list(api, stopped, "pub/nope")["error"]
    big = _get(api, stopped, "pub/big.bin")
    assert big["error"] == "file 'pub/big.bin' is too large; public files are read up to 20MB"


def test_a_running_project_is_read_by_its_agent(
    api: ApiClient, owner: User, db: Database, stopped: str
) -> None:
    sh(api, owner.api_key, stopped, "true")
    started = _row(db, stopped)
    assert started.run_state == "running"
    assert _get(api, stopped, "pub/a.txt")["data"] == "hello\n"
    assert _get(api, stopped, "pub/to_secret")["error"] == _not_public(stopped, "pub/to_secret")
    assert _row(db, stopped).run_state == "running"
    _stop(api, owner.api_key, db, stopped)
    assert _get(api, stopped, "pub/a.txt")["data"] == "hello\n"
    assert _row(db, stopped).run_state == "opened"


@contextmanager
def _project_locked(server: Server, project_id: str) -> Iterator[None]:
    """Hold the project's start/stop lock, as a start on another hub would: reads of the
    stopped project wait until it is released."""
    folder = Path(server.env["CALCHUB_RUNTIME_ROOT"]) / project_id
    folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _first_done(futures: list[Future[Reply]], count: int) -> list[Future[Reply]]:
    """The first `count` of `futures` to finish (the others are still waiting)."""
    pending = set(futures)
    while len(futures) - len(pending) < count:
        done, pending = wait(pending, timeout=120, return_when=FIRST_COMPLETED)
        assert done, "no read finished"
    return [f for f in futures if f not in pending]


def _too_many(address: str) -> str:
    return f"Too many public reads at once from the ip address {address}; try again shortly."


@pytest.mark.usefixtures("stays_stopped")
def test_one_client_cannot_take_every_reader(server: Server, api: ApiClient, stopped: str) -> None:
    """Each client address has at most two public reads under way; more are refused at
    once, while another address still gets its own two. The address is the one the
    trusted proxy (the test, for this server) forwards."""

    def read(address: str, listing: bool) -> Reply:
        client = ApiClient(server.url)
        try:
            headers = {"X-Forwarded-For": address}
            if listing:
                body = {"project_id": stopped, "path": "pub"}
                return client.call("public_get_directory_listing", "", body, headers=headers)
            body = {"project_id": stopped, "path": "pub/a.txt"}
            return client.call("public_get_text_file", "", body, headers=headers)
        finally:
            client.close()

    hog, other = "203.0.113.7", "203.0.113.8"
    with ThreadPoolExecutor(8) as pool, _project_locked(server, stopped):
        hogs = [pool.submit(read, hog, i % 2 == 1) for i in range(5)]
        # Two are let in and wait for the lock; files and listings count alike.
        refused = _first_done(hogs, 3)
        for future in refused:
            reply = future.result()
            assert reply.event == "error", reply.body
            assert reply["error"] == _too_many(hog)
        # Another address is counted on its own, while the first one's two still wait.
        others = [pool.submit(read, other, False) for _ in range(3)]
        [other_refused] = _first_done(others, 1)
        assert other_refused.result()["error"] == _too_many(other)
    let_in = [f for f in hogs if f not in refused] + [f for f in others if f != other_refused]
    assert len(let_in) == 4
    for future in let_in:
        reply = future.result()
        assert reply.event in ("public_text_file_contents", "public_directory_listing"), reply.body
    # The slots were given back.
    assert read(hog, False)["data"] == "hello\n"
    assert read(hog, True).event == "public_directory_listing"
