"""Two hubs on one database (PostgreSQL in production; the same holds for one SQLite file):
concurrent project creations and renames split over both never clash or get lost."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from calchub.db.tables import projects
from tests.conftest import User
from tests.harness import ApiClient, Database, Server

CREATIONS = 120


def _in_threads(calls: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_concurrent_creations_on_two_hubs_all_succeed(
    server: Server, second_hub: Server, user: User, db: Database
) -> None:
    clients = [ApiClient(server.url), ApiClient(second_hub.url)]
    tag = uuid.uuid4().hex[:8]
    # The per-account creation rate is not what this test is about.
    server.cli("admin", "setting", "project_creations_per_minute", "0")
    try:
        replies = _in_threads(
            [
                lambda n=n: clients[n % 2].call(
                    "create_project", user.api_key, {"title": f"{tag}-{n}"}
                )
                for n in range(CREATIONS)
            ]
        )
    finally:
        server.cli("admin", "setting", "project_creations_per_minute", "--reset")
        for client in clients:
            client.close()
    failures = [r.body for r in replies if r.event != "project_created"]
    assert failures == []
    rows = db.execute(select(projects.c.uid).where(projects.c.title.like(f"{tag}-%")))
    uids = [row.uid for row in rows]
    assert len(uids) == CREATIONS and len(set(uids)) == CREATIONS


def test_concurrent_renames_never_give_one_owner_a_name_twice(
    server: Server, second_hub: Server, user: User, db: Database
) -> None:
    api = ApiClient(server.url)
    other = ApiClient(second_hub.url)
    try:
        ids = [
            api.call("create_project", user.api_key, {"title": "rename"})["project_id"]
            for _ in range(8)
        ]
        name = f"same-{uuid.uuid4().hex[:8]}"

        def rename(n: int, pid: str) -> Any:
            # Names are not case sensitive: NAME and name clash.
            wanted = name.upper() if n else name
            query = {"projects": {"project_id": pid, "name": wanted}}
            return (api if n % 2 else other).call("query", user.api_key, {"query": query})

        replies = _in_threads([lambda n=n, pid=pid: rename(n, pid) for n, pid in enumerate(ids)])
    finally:
        api.close()
        other.close()
    accepted = [r for r in replies if r.event == "query"]
    assert len(accepted) == 1, [r.body for r in replies]
    for refused in (r for r in replies if r.event != "query"):
        assert refused.event == "error", refused.body
    named = db.execute(
        select(func.count()).select_from(projects).where(func.lower(projects.c.name) == name)
    )
    assert named[0][0] == 1
