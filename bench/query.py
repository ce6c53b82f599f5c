"""`query` latency on an account with many projects, against the ping round trip.

    .venv/bin/python bench/query.py [--projects 1000] [--database-url postgresql://...]

Starts a real `calchub serve` (SQLite in a temporary data folder unless --database-url is
given; best an empty database), creates a bench account through the admin CLI and inserts
N projects it owns straight into `projects` and `project_users`. Then, sequentially on one
keep-alive connection, times `ping`, a `projects_all` get of every project (title, users,
last_edited) and a single-project `projects` get, and prints p50/p95 of each and their
ratios to ping. The account and its projects are deleted again at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calchub.db.engine import create_engine
from calchub.db.tables import accounts, project_users, projects
from calchub.db.types import utcnow
from ping import calchub_cli, project_server

# Above ordinary uids and far from the ones the server hands out, so inserts never collide.
UID_OFFSET = 500_000_000


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    return statistics.median(ordered) * 1000, p95 * 1000


async def insert_projects(url: str, owner: str, count: int) -> list[str]:
    """`count` projects owned by `owner`, as create_project would store them."""
    engine = create_engine(url)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    try:
        async with engine.begin() as conn:
            highest = await conn.scalar(select(func.max(projects.c.uid))) or 0
            base = max(highest, UID_OFFSET) + 1
            now = utcnow()
            await conn.execute(
                insert(projects),
                [
                    {
                        "project_id": pid,
                        "title": f"Bench project {n}",
                        "description": "",
                        "compute_image": "default",
                        "created": now,
                        "last_edited": now,
                        "deleted": False,
                        "uid": base + n,
                        "run_state": "opened",
                        "run_state_time": now,
                    }
                    for n, pid in enumerate(ids)
                ],
            )
            await conn.execute(
                insert(project_users),
                [
                    {
                        "project_id": pid,
                        "account_id": owner,
                        "group": "owner",
                        "hide": False,
                        "added": now,
                    }
                    for pid in ids
                ],
            )
    finally:
        await engine.dispose()
    return ids


async def remove_account(url: str, account_id: str, project_ids: list[str]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            # project_users and api_keys go with their rows (ON DELETE CASCADE).
            await conn.execute(delete(projects).where(projects.c.project_id.in_(project_ids)))
            await conn.execute(delete(accounts).where(accounts.c.account_id == account_id))
    finally:
        await engine.dispose()


def timed(client: httpx.Client, calls: int, event: str, body: dict[str, Any]) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        reply = client.post(f"/api/v1/{event}", json=body).json()
        samples.append(time.perf_counter() - started)
        if reply.get("event") not in ("pong", "query"):
            raise RuntimeError(f"{event} failed: {reply}")
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--list-calls", type=int, default=30, help="projects_all calls (30)")
    parser.add_argument("--calls", type=int, default=200, help="ping and single-get calls (200)")
    parser.add_argument("--database-url", help="postgresql://... (default: SQLite, temporary)")
    args = parser.parse_args()
    server, folders = project_server(
        *(("--database-url", args.database_url) if args.database_url else ())
    )
    # The admin CLI must work on the same database the server uses.
    url = args.database_url or f"sqlite:///{folders[0].resolve() / 'calchub.db'}"
    where = ("--data-dir", str(folders[0]), "--database-url", url)
    account_id: str | None = None
    project_ids: list[str] = []
    try:
        server.wait_ready()
        created = json.loads(
            calchub_cli(
                "admin",
                "create-account",
                "--email",
                f"query-bench-{uuid.uuid4().hex[:8]}@example.com",
                "--first-name",
                "Query",
                "--last-name",
                "Bench",
                "--api-key",
                *where,
            )
        )
        account_id = str(created["account_id"])
        started = time.perf_counter()
        project_ids = asyncio.run(insert_projects(url, account_id, args.projects))
        inserted = time.perf_counter() - started
        listing = {
            "projects_all": [
                {"project_id": None, "title": None, "users": None, "last_edited": None}
            ]
        }
        single = {"projects": {"project_id": project_ids[len(project_ids) // 2], "title": None}}
        with httpx.Client(base_url=server.url, auth=(created["api_key"], ""), timeout=60) as client:
            rows = client.post("/api/v1/query", json={"query": listing}).json()["query"]
            if len(rows["projects_all"]) != args.projects:
                raise RuntimeError(f"projects_all gave {len(rows['projects_all'])} rows")
            timed(client, 20, "ping", {})
            timed(client, 5, "query", {"query": listing})
            timed(client, 20, "query", {"query": single})
            ping = percentiles(timed(client, args.calls, "ping", {}))
            many = percentiles(timed(client, args.list_calls, "query", {"query": listing}))
            one = percentiles(timed(client, args.calls, "query", {"query": single}))
        backend = url.split(":", 1)[0]
        print(
            f"calchub on {backend}: {args.projects} projects inserted in {inserted:.2f} s; "
            "sequential calls on one keep-alive connection, 127.0.0.1"
        )
        for label, calls, (p50, p95) in (
            ("ping", args.calls, ping),
            (f"projects_all ({args.projects} rows)", args.list_calls, many),
            ("projects single get", args.calls, one),
        ):
            print(f"  {label:<28}{calls:>5} calls   p50 {p50:8.2f} ms   p95 {p95:8.2f} ms")
        for label, (p50, p95) in (("projects_all", many), ("single get", one)):
            print(f"  {label} / ping: p50 {p50 / ping[0]:.2f}x, p95 {p95 / ping[1]:.2f}x")
        return 0
    except RuntimeError as exc:
        print(f"query benchmark: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        if account_id and args.database_url:
            asyncio.run(remove_account(url, account_id, project_ids))
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
