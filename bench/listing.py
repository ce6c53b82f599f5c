"""`projects_all` on an account with many projects and `user_search` over many accounts,
against ping on the same server and on the bare server.

    .venv/bin/python bench/listing.py [--projects 1000] [--accounts 1000000]
    .venv/bin/python bench/listing.py --database-url postgresql://postgres@127.0.0.1/bench

Starts, as child processes, a real `calchub serve` (SQLite in a temporary data folder, or
`--database-url`, which must name an empty throw-away database: calchub prints its first
admin key there) and bench/bare_app.py. The projects (owned by the admin) and the accounts
are loaded straight into the database in one transaction: executemany on SQLite, COPY on
PostgreSQL (followed by VACUUM ANALYZE, as autovacuum would do). Then, sequentially on one
keep-alive connection per server, it times: ping on the bare server, ping on calchub, a
`projects_all` get of every project (title, users, last_edited), the same with `--changed`
projects renamed straight in the database before each call, user_search for name
prefixes (each call a different prefix) and for email addresses (each a different account).
A call's time runs until its whole reply has arrived; every reply is then parsed and checked
(each listing: all the projects, each row with the fields asked for) with the clock stopped,
the same way for ping and the rest. Prints p50/p95 of each and their ratios to calchub's
ping. Everything listens on 127.0.0.1; the servers are stopped and the data folder removed
on exit (a PostgreSQL database keeps its rows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ping import ServerProcess, start_bare_and_calchub

# Above ordinary uids and far from the ones the server hands out, so inserts never collide.
UID_OFFSET = 500_000_000
ADMIN_ID = re.compile(r"Created the admin account \S+ \(([0-9a-f-]{36})\)")
ACCOUNT_COLUMNS = [
    "account_id",
    "email_address",
    "first_name",
    "last_name",
    "created",
    "last_active",
    "groups",
    "banned",
    "deleted",
    "unlisted",
]
PROJECT_COLUMNS = [
    "project_id",
    "title",
    "description",
    "compute_image",
    "created",
    "last_edited",
    "deleted",
    "uid",
    "run_state",
    "run_state_time",
]
# Made-up names: 2,366 first names and 31,000 last names, each a few syllables long.
SYLLABLES = ["ka", "lo", "mi", "ren", "sa", "to", "vi", "ber", "dan", "el", "gor", "hal", "in"]


def made_up_name(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)).capitalize()


def account_rows(count: int, seed: int = 1) -> Iterator[tuple[Any, ...]]:
    """(account_id, email, first, last, created, last_active): ACCOUNT_COLUMNS's start."""
    rng = random.Random(seed)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for n in range(count):
        created = start + timedelta(minutes=n)
        active = created + timedelta(days=rng.randint(0, 900)) if rng.random() < 0.8 else None
        yield (
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            f"user{n}@example.com",
            made_up_name(rng, rng.randint(2, 3)),
            made_up_name(rng, rng.randint(2, 4)),
            created,
            active,
        )


def project_rows(count: int) -> Iterator[tuple[Any, ...]]:
    """(project_id, title, created, uid) of each project."""
    now = datetime.now(UTC)
    for n in range(count):
        yield (str(uuid.uuid4()), f"Bench project {n}", now - timedelta(minutes=n), UID_OFFSET + n)


def sqlite_time(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=None).isoformat(" ")


def load_sqlite(path: Path, owner: str, projects: int, accounts: int) -> None:
    db = sqlite3.connect(path, timeout=60)
    try:
        with db:
            db.executemany(
                "INSERT INTO accounts (account_id, email_address, first_name, last_name,"
                " created, last_active, groups, banned, deleted, unlisted)"
                " VALUES (?, ?, ?, ?, ?, ?, '[]', 0, 0, 0)",
                (
                    (aid, email, first, last, sqlite_time(created), sqlite_time(active))
                    for aid, email, first, last, created, active in account_rows(accounts)
                ),
            )
            rows = list(project_rows(projects))
            db.executemany(
                "INSERT INTO projects (project_id, title, description, compute_image, created,"
                " last_edited, deleted, uid, run_state, run_state_time)"
                " VALUES (?, ?, '', 'default', ?, ?, 0, ?, 'opened', ?)",
                (
                    (pid, title, sqlite_time(at), sqlite_time(at), uid, sqlite_time(at))
                    for pid, title, at, uid in rows
                ),
            )
            db.executemany(
                'INSERT INTO project_users (project_id, account_id, "group", hide, added)'
                " VALUES (?, ?, 'owner', 0, ?)",
                ((pid, owner, sqlite_time(at)) for pid, _, at, _ in rows),
            )
    finally:
        db.close()


async def load_postgresql(url: str, owner: str, projects: int, accounts: int) -> None:
    conn = await asyncpg.connect(re.sub(r"^postgresql\+\w+:", "postgresql:", url))
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "accounts",
                columns=ACCOUNT_COLUMNS,
                records=((*row, "[]", False, False, False) for row in account_rows(accounts)),
            )
            rows = list(project_rows(projects))
            await conn.copy_records_to_table(
                "projects",
                columns=PROJECT_COLUMNS,
                records=[
                    (pid, title, "", "default", at, at, False, uid, "opened", at)
                    for pid, title, at, uid in rows
                ],
            )
            await conn.copy_records_to_table(
                "project_users",
                columns=["project_id", "account_id", "group", "hide", "added"],
                records=[(pid, owner, "owner", False, at) for pid, _, at, _ in rows],
            )
        # Autovacuum does both soon after a load this size; the vacuum also marks the pages
        # all-visible, as they are on a site in use, which index-only scans rely on.
        await conn.execute("VACUUM ANALYZE accounts, projects, project_users")
    finally:
        await conn.close()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    return statistics.median(ordered) * 1000, p95 * 1000


Check = Callable[[dict[str, Any]], None]


def timed(
    client: httpx.Client,
    bodies: list[tuple[str, dict[str, Any]]],
    check: Check | None = None,
    before: Callable[[], None] | None = None,
) -> list[float]:
    """Each call's latency: until the whole reply has arrived (httpx reads the body before
    `post` returns). Parsing and checking a reply happen after its clock stops, for ping and
    listings alike, so that the client's JSON decoder is not charged to the server; so does
    `before`, run before each call."""
    samples = []
    for event, body in bodies:
        if before is not None:
            before()
        started = time.perf_counter()
        response = client.post(f"/api/v1/{event}", json=body)
        samples.append(time.perf_counter() - started)
        reply = response.json()
        if reply.get("event") not in ("pong", "query", "user_search_results"):
            raise RuntimeError(f"{event} failed: {reply}")
        if check is not None:
            check(reply)
    return samples


class ProjectChanger:
    """Renames `count` of the loaded projects straight in the database, as other clients'
    writes would between two listings of the owner: each listing then has that many rows
    the database must write again."""

    def __init__(self, data: Path, url: str, count: int) -> None:
        self._count = count
        self._rng = random.Random(4)
        self._n = 0
        self._sqlite: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pg: Any = None
        if url:
            self._loop = asyncio.new_event_loop()
            dsn = re.sub(r"^postgresql\+\w+:", "postgresql:", url)
            self._pg = self._loop.run_until_complete(asyncpg.connect(dsn))
            found = self._loop.run_until_complete(self._pg.fetch("SELECT project_id FROM projects"))
            self._ids = [row[0] for row in found]
        else:
            self._sqlite = sqlite3.connect(data / "calchub.db", timeout=60)
            self._ids = [row[0] for row in self._sqlite.execute("SELECT project_id FROM projects")]

    def __call__(self) -> None:
        self._n += 1
        title = f"Bench project, renamed {self._n}"
        ids = self._rng.sample(self._ids, self._count)
        if self._loop is not None:
            statement = "UPDATE projects SET title = $1 WHERE project_id = ANY($2::text[])"
            self._loop.run_until_complete(self._pg.execute(statement, title, ids))
        elif self._sqlite is not None:
            marks = ",".join("?" * len(ids))
            with self._sqlite:
                self._sqlite.execute(
                    f"UPDATE projects SET title = ? WHERE project_id IN ({marks})", [title, *ids]
                )

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._pg.close())
            self._loop.close()
        if self._sqlite is not None:
            self._sqlite.close()


def listing_check(projects: int, fields: list[str]) -> Check:
    """Every row of a projects_all reply, all of them, with exactly the fields asked for
    (none of them is null in the loaded data)."""

    def check(reply: dict[str, Any]) -> None:
        rows = reply["query"]["projects_all"]
        if len(rows) != projects:
            raise RuntimeError(f"projects_all gave {len(rows)} rows, not {projects}")
        for row in rows:
            if list(row) != fields or not row["users"]:
                raise RuntimeError(f"projects_all gave a row {row}")

    return check


def name_queries(count: int, seed: int = 2) -> list[str]:
    """Prefixes as people type them: a name's first three letters, a whole first name, or a
    first name and the start of a last name."""
    rng = random.Random(seed)
    queries = []
    for n in range(count):
        first = made_up_name(rng, rng.randint(2, 3)).lower()
        last = made_up_name(rng, rng.randint(2, 4)).lower()
        queries.append([first[:3], first, f"{first} {last[:3]}"][n % 3])
    return queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200, help="calls per figure (200)")
    parser.add_argument(
        "--changed", type=int, default=10, help="projects renamed before each listing (10)"
    )
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="calchub-bench-"))
    servers: list[ServerProcess] = []
    try:
        bare, calchub = start_bare_and_calchub(data, args.database_url, servers)
        key = calchub.printed_key
        admin = ADMIN_ID.search("".join(calchub.lines))
        if key is None or admin is None:
            raise RuntimeError("calchub printed no admin key: use an empty database")
        owner = admin.group(1)
        started = time.perf_counter()
        if args.database_url:
            asyncio.run(load_postgresql(args.database_url, owner, args.projects, args.accounts))
        else:
            load_sqlite(data / "calchub.db", owner, args.projects, args.accounts)
        loaded = time.perf_counter() - started

        calls = args.calls
        fields = ["project_id", "title", "users", "last_edited"]
        listing = {"query": {"projects_all": [dict.fromkeys(fields)]}}
        listed = listing_check(args.projects, fields)
        ping = [("ping", {})] * calls
        lists = [("query", listing)] * max(calls // 4, 10)
        names = [("user_search", {"query": q}) for q in name_queries(calls)]
        rng = random.Random(3)
        emails = [
            ("user_search", {"query": f"user{rng.randrange(args.accounts)}@example.com"})
            for _ in range(calls)
        ]
        changer = ProjectChanger(data, args.database_url, args.changed)
        with (
            contextlib.closing(changer),
            httpx.Client(base_url=bare.url, timeout=60) as bare_client,
            httpx.Client(base_url=calchub.url, auth=(key, ""), timeout=60) as client,
        ):
            found = client.post("/api/v1/user_search", json={"query": "user1@example.com"})
            if len(found.json()["results"]) != 1:
                raise RuntimeError(f"user_search by email: {found.text}")
            timed(client, lists[:3], listed)
            for warm in (ping, names[:20], emails[:20]):
                timed(client, warm)
            timed(bare_client, ping[:20])
            figures = {
                "bare ping": percentiles(timed(bare_client, ping)),
                "ping": percentiles(timed(client, ping)),
                f"projects_all ({args.projects})": percentiles(timed(client, lists, listed)),
                f"  {args.changed} changed before each": percentiles(
                    timed(client, lists, listed, changer)
                ),
                "user_search name prefix": percentiles(timed(client, names)),
                "user_search email": percentiles(timed(client, emails)),
            }
        backend = args.database_url.split(":", 1)[0] if args.database_url else "sqlite"
        print(
            f"calchub on {backend}: {args.projects} projects and {args.accounts} accounts"
            f" loaded in {loaded:.1f} s; sequential calls on one keep-alive connection"
        )
        ping_p50 = figures["ping"][0]
        for label, (p50, p95) in figures.items():
            ratio = "" if label == "ping" else f"   {p50 / ping_p50:5.2f}x ping (p50)"
            print(f"  {label:<28} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms{ratio}")
        return 0
    except RuntimeError as exc:
        print(f"listing benchmark: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
