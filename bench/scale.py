"""Several hubs on one PostgreSQL: what each request costs the hubs and what it costs the
database, with 1, 2 and 4 hub processes and 10,000 projects.

The run starts its own PostgreSQL cluster (initdb into a temporary folder, on a free port,
with pg_stat_statements), migrates it, bulk-loads accounts with API keys and their projects
straight into the tables, then for each hub count starts that many real `calchub serve
--runtime fake` processes on the database and drives each with its own wrk, all at once,
using a mix of authenticated calls (see MIX; `--only OP` sends one kind alone). During each
measured window it reads the CPU time of every hub, of every PostgreSQL process (the
postmaster's dead children included), of wrk and of the whole machine from /proc, and which
statements the database ran from pg_stat_statements; a window without load first shows what
the hubs' background duties cost. It prints requests/s per hub and in total, CPU-milliseconds per
request for hubs and database, the database's share, statements per request and the most
expensive statements.

    .venv/bin/python bench/scale.py                      # about 5 minutes
    .venv/bin/python bench/scale.py --hubs 1,2,4 --seconds 20 --projects 10000

Needs wrk and PostgreSQL's server binaries (Debian: postgresql, wrk); run as root the
cluster runs as the `postgres` user. Everything listens on 127.0.0.1 and is removed at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text, update

from calchub.accounts.keys import KEY_PREFIX, generate_key
from calchub.accounts.secret import digest
from calchub.db.engine import create_engine, migrate
from calchub.db.tables import accounts, api_keys, counters, project_users, projects
from calchub.projects.store import UID_BASE, UID_COUNTER
from ping import CALCHUB, HOST, clean_env, free_port

PG_BIN = Path("/usr/lib/postgresql")
TICK = os.sysconf("SC_CLK_TCK")
# Share of the projects the database says are running when a run starts (a busy site).
RUNNING_EVERY = 10
# Of those, the ones in use during the run: commands and touches go to them. Each hub's fake
# runtime knows only the projects it started itself, so every hub runs a command in each of
# these first (a touch of a running project does not start it); the measured window then
# sees a project start only where the mix asks for one.
IN_USE = 200

# The request mix, in percent: a random project of the site (`p`), or one of those in use
# (clients touch and run commands in projects they have open), with its owner's API key. One
# request in a hundred runs a command in a random project, which mostly starts it first: at
# about 100 requests/s that is as many starts as 1,000 running projects with a 30 minute idle
# timeout need.
MIX = (
    (10, "ping", "v1 ping"),
    (35, "get", "v1 query: one project's title, state, last_active"),
    (10, "list", "v1 query: all of the owner's projects (title, state)"),
    (15, "status", "conat hub projects.status"),
    (10, "exec", "v1 project_exec `echo hi` in a project in use (a real process)"),
    (15, "touch", "v1 touch_project of a project in use"),
    (4, "set", "v1 query set: a project's description (a write)"),
    (1, "exec_start", "v1 project_exec `echo hi` in a random project (mostly a start first)"),
)

LUA_MIX = """
local ops = {%(ops)s}
-- Globals, so that done() can read them from each thread.
counter, errors, sample = 0, 0, nil

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tonumber(args[1] or "0"))
end

local function post(path, auth, body)
  return wrk.format("POST", path,
    {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end

function request()
  counter = counter + 1
  local op = ops[math.random(100)]
  local p
  if op == "exec" or op == "touch" then
    p = projects[in_use[math.random(#in_use)]]
  else
    p = projects[math.random(#projects)]
  end
  local auth, id = auths[p[1]], p[2]
  if op == "ping" then
    return post("/api/v1/ping", auth, "{}")
  elseif op == "get" then
    return post("/api/v1/query", auth, '{"query":{"projects":{"project_id":"' .. id ..
      '","title":null,"state":null,"last_active":null}}}')
  elseif op == "list" then
    return post("/api/v1/query", auth,
      '{"query":{"projects":[{"project_id":null,"title":null,"state":null}]}}')
  elseif op == "status" then
    return post("/api/conat/hub", auth,
      '{"name":"projects.status","args":[{"project_id":"' .. id .. '"}]}')
  elseif op == "exec" or op == "exec_start" then
    return post("/api/v1/project_exec", auth, '{"project_id":"' .. id ..
      '","command":"echo","args":["hi"],"timeout":10}')
  elseif op == "touch" then
    return post("/api/v1/touch_project", auth, '{"project_id":"' .. id .. '"}')
  else
    return post("/api/v1/query", auth, '{"query":{"projects":{"project_id":"' .. id ..
      '","description":"run ' .. counter .. '"}}}')
  end
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"event":"error"', 1, true)
      or string.sub(body, 1, 9) == '{"error":' then
    errors = errors + 1
    if sample == nil then sample = status .. " " .. string.sub(body, 1, 200) end
  end
end

function done(summary, latency, requests)
  local failed, first = 0, ""
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("errors")
    local s = thread:get("sample")
    if s ~= nil and first == "" then first = s end
  end
  io.write(string.format(
    'RESULT {"requests":%%d,"seconds":%%f,"errors":%%d,"p50_ms":%%f,"p99_ms":%%f,"sample":%%q}\\n',
    summary.requests, summary.duration / 1e6, failed + summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, first))
end
"""


@dataclass
class Site:
    url: str
    owners: list[tuple[str, str]]  # (account_id, API key)
    project_owner: list[tuple[int, str]]  # (index into owners, project_id)


@dataclass
class Cpu:
    """CPU seconds used so far, by whom."""

    hubs: list[float]
    database: float
    wrk: float
    bench: float
    machine_busy: float
    machine_total: float


@dataclass
class Run:
    hubs: int
    seconds: float
    requests: list[int]
    errors: int
    p50_ms: list[float]
    p99_ms: list[float]
    samples: list[str]
    cpu: Cpu
    statements: int = 0
    top: list[tuple[int, float, str]] = field(default_factory=list)
    # The same hubs without load, over one scheduler interval: their background duties.
    idle_seconds: float = 0.0
    idle_cpu: Cpu | None = None
    idle_statements: int = 0


# ---------------------------------------------------------------- CPU time from /proc


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu(pid: int, *, with_dead_children: bool = True) -> float:
    """utime + stime (+ the waited-for children's) of one process, in seconds."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    used = int(fields[11]) + int(fields[12])
    if with_dead_children:
        used += int(fields[13]) + int(fields[14])
    return used / TICK


def tree_cpu(root: int) -> float:
    """A process, its dead children and its live children (PostgreSQL's backends)."""
    total = process_cpu(root)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == root:
                total += process_cpu(int(entry.name))
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / TICK, total / TICK


# ---------------------------------------------------------------- a private PostgreSQL


class Postgres:
    """A throw-away cluster of Debian's newest PostgreSQL, run by `postgres` when we are root."""

    def __init__(self) -> None:
        versions = sorted(PG_BIN.glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
        if not versions:
            raise SystemExit("PostgreSQL's server binaries are needed: apt-get install postgresql")
        self.bin = versions[-1].parent
        self.folder = Path(tempfile.mkdtemp(prefix="calchub-scale-pg-"))
        self.port = free_port()
        self.url = f"postgresql://postgres@{HOST}:{self.port}/calchub_scale"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        options = (
            f"-c listen_addresses={HOST} -c port={self.port} -c max_connections=300"
            f" -c unix_socket_directories={self.folder}"
            " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.folder / "log"),
            "-o",
            options,
            "start",
        )
        self._run(
            str(self.bin / "createdb"),
            "-h",
            HOST,
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "calchub_scale",
        )

    @property
    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------- the site


async def load_site(url: str, n_accounts: int, n_projects: int) -> Site:
    """Accounts, each with a v1 API key, and their projects, inserted in bulk."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        now = datetime.now(UTC)
        owners = [(str(uuid.uuid4()), generate_key()) for _ in range(n_accounts)]
        # Each owner a contiguous run of projects, so that every owner has some of the
        # running ones (every RUNNING_EVERY-th) and none reaches the site's running limit.
        project_owner = [
            (i * n_accounts // n_projects, str(uuid.uuid4())) for i in range(n_projects)
        ]
        async with engine.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            await conn.execute(
                insert(accounts),
                [
                    {
                        "account_id": a,
                        "email_address": f"user{i}@example.com",
                        "first_name": "User",
                        "last_name": str(i),
                        "groups": [],
                        "banned": False,
                        "deleted": False,
                        "unlisted": False,
                        "created": now,
                    }
                    for i, (a, _) in enumerate(owners)
                ],
            )
            await conn.execute(
                insert(api_keys),
                [
                    {
                        "account_id": a,
                        "key_hash": digest(k),
                        "prefix": k[: len(KEY_PREFIX) + 4],
                        "name": "scale",
                        "created": now,
                    }
                    for a, k in owners
                ],
            )
            await conn.execute(
                insert(projects),
                [
                    {
                        "project_id": p,
                        "title": f"Project {i}",
                        "description": "",
                        "compute_image": "ubuntu2004",
                        "created": now,
                        "last_edited": now,
                        "deleted": False,
                        "owner_id": owners[o][0],
                        "uid": UID_BASE + i,
                        "run_state": "opened",
                        "run_state_time": now,
                    }
                    for i, (o, p) in enumerate(project_owner)
                ],
            )
            await conn.execute(
                insert(project_users),
                [
                    {
                        "project_id": p,
                        "account_id": owners[o][0],
                        "group": "owner",
                        "hide": False,
                        "added": now,
                    }
                    for o, p in project_owner
                ],
            )
            await conn.execute(
                update(counters)
                .where(counters.c.name == UID_COUNTER)
                .values(value=UID_BASE + n_projects)
            )
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return Site(url, owners, project_owner)


async def reset_site(url: str) -> None:
    """Every run starts alike: one project in RUNNING_EVERY running, just used."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE projects SET run_state = CASE WHEN uid % :every = 0"
                    " THEN 'running' ELSE 'opened' END, run_state_time = now(),"
                    " last_activity = now(), action_request = NULL, action_state = NULL"
                ),
                {"every": RUNNING_EVERY},
            )
            # The planner's statistics as autovacuum keeps them on a live site: a tenth of
            # the projects now run, where the load left none.
            await conn.execute(text("ANALYZE projects"))
            await conn.execute(text("CHECKPOINT"))
    finally:
        await engine.dispose()


def mix(only: str | None) -> list[tuple[int, str, str]]:
    if only is None:
        return list(MIX)
    chosen = [(100, name, what) for _, name, what in MIX if name == only]
    if not chosen:
        raise SystemExit(f"--only takes one of {', '.join(name for _, name, _ in MIX)}")
    return chosen


def in_use(site: Site) -> list[int]:
    """Indices of the projects in use: running ones (reset_site marks every RUNNING_EVERY-th
    uid, and uids count up from UID_BASE, a multiple of it)."""
    running = list(range(0, len(site.project_owner), RUNNING_EVERY))
    return running[:: max(1, len(running) // IN_USE)][:IN_USE]


async def start_in_use(url: str, site: Site) -> None:
    """Run `true` in every project in use through this hub, 8 at a time, so that its fake
    runtime knows them as running; each must succeed."""
    queue = [site.project_owner[i] for i in in_use(site)]

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            owner, project_id = queue.pop()
            reply = await client.post(
                "/api/v1/project_exec",
                json={"project_id": project_id, "command": "true"},
                auth=(site.owners[owner][1], ""),
            )
            if reply.status_code != 200 or reply.json().get("event") == "error":
                raise SystemExit(f"project_exec failed: {reply.status_code} {reply.text[:200]}")

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(8)))


def lua_script(site: Site, folder: Path, weights: list[tuple[int, str, str]]) -> Path:
    ops = [name for weight, name, _ in weights for _ in range(weight)]
    assert len(ops) == 100, "the mix must add up to 100%"
    auths = [base64.b64encode(f"{key}:".encode()).decode() for _, key in site.owners]
    lines = ["threads = {}", "auths = {"]
    lines += [f'  "Basic {a}",' for a in auths]
    lines += ["}", "projects = {"]
    lines += [f'  {{{o + 1}, "{p}"}},' for o, p in site.project_owner]
    lines += ["}", "in_use = {"]
    lines += [f"  {i + 1}," for i in in_use(site)]
    lines += ["}"]
    path = folder / "mix.lua"
    path.write_text("\n".join(lines) + LUA_MIX % {"ops": ", ".join(f'"{op}"' for op in ops)})
    return path


# ---------------------------------------------------------------- hubs and load


class Hub:
    def __init__(self, index: int, site: Site, folder: Path, scheduler_interval_s: float) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        data = Path(tempfile.mkdtemp(prefix=f"hub{index}-", dir=folder))
        config = data / "calchub.toml"
        config.write_text(
            f'database_url = "{site.url}"\n'
            f'runtime = "fake"\n'
            f'projects_root = "{folder / "projects"}"\n'
            f'runtime_root = "{folder / "run"}"\n'
            f'install_registry = "{folder / "installs.json"}"\n'
            f"scheduler_interval_s = {scheduler_interval_s}\n"
        )
        self.log = (data / "log").open("w")
        self.process = subprocess.Popen(
            [
                *CALCHUB,
                "serve",
                "--config",
                str(config),
                "--data-dir",
                str(data),
                "--host",
                HOST,
                "--port",
                str(self.port),
            ],
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"hub on port {self.port} did not start; see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


async def wrk(
    url: str, script: Path, seconds: float, connections: int, seed: int
) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
        "--",
        str(seed),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    for line in out.decode().splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise SystemExit(f"wrk gave no result: {out.decode()}{err.decode()}")


def cpu_now(hubs: list[Hub], pg: Postgres) -> Cpu:
    busy, total = machine_cpu()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return Cpu(
        hubs=[process_cpu(h.process.pid) for h in hubs],
        database=tree_cpu(pg.postmaster),
        wrk=children.ru_utime + children.ru_stime,
        bench=me.ru_utime + me.ru_stime,
        machine_busy=busy,
        machine_total=total,
    )


def cpu_delta(a: Cpu, b: Cpu) -> Cpu:
    return Cpu(
        hubs=[y - x for x, y in zip(a.hubs, b.hubs, strict=True)],
        database=b.database - a.database,
        wrk=b.wrk - a.wrk,
        bench=b.bench - a.bench,
        machine_busy=b.machine_busy - a.machine_busy,
        machine_total=b.machine_total - a.machine_total,
    )


async def statements(url: str, reset: bool) -> tuple[int, list[tuple[int, float, str]]]:
    """Statements run in calchub's database since the last reset, and the costliest ten."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            if reset:
                await conn.execute(text("SELECT pg_stat_statements_reset()"))
                return 0, []
            where = (
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND query NOT LIKE '%pg_stat_statements%'"
            )
            total = await conn.scalar(
                text(f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements {where}")
            )
            rows = (
                await conn.execute(
                    text(
                        "SELECT calls, total_exec_time, query FROM pg_stat_statements "
                        f"{where} ORDER BY total_exec_time DESC LIMIT 10"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    return int(total or 0), [(int(r[0]), float(r[1]), " ".join(r[2].split())) for r in rows]


async def measure(
    n_hubs: int, site: Site, pg: Postgres, script: Path, folder: Path, args: argparse.Namespace
) -> Run:
    await reset_site(site.url)
    hubs = [Hub(i, site, folder, args.scheduler_interval) for i in range(n_hubs)]
    try:
        for hub in hubs:
            hub.wait_ready()
        await statements(site.url, reset=True)
        idle_before = cpu_now(hubs, pg)
        await asyncio.sleep(args.idle_seconds)
        idle_cpu = cpu_delta(idle_before, cpu_now(hubs, pg))
        idle_count, _ = await statements(site.url, reset=False)
        per_hub = max(1, args.connections // n_hubs)
        await asyncio.gather(*(start_in_use(h.url, site) for h in hubs))
        # Warm-up: connection pools, key caches.
        await asyncio.gather(*(wrk(h.url, script, 3, per_hub, i) for i, h in enumerate(hubs)))
        await statements(site.url, reset=True)
        before = cpu_now(hubs, pg)
        results = await asyncio.gather(
            *(wrk(h.url, script, args.seconds, per_hub, 100 + i) for i, h in enumerate(hubs))
        )
        after = cpu_now(hubs, pg)
        count, top = await statements(site.url, reset=False)
    finally:
        for hub in hubs:
            hub.stop()
    return Run(
        hubs=n_hubs,
        seconds=max(r["seconds"] for r in results),
        requests=[int(r["requests"]) for r in results],
        errors=sum(int(r["errors"]) for r in results),
        p50_ms=[float(r["p50_ms"]) for r in results],
        p99_ms=[float(r["p99_ms"]) for r in results],
        samples=[str(r["sample"]) for r in results if r["sample"]],
        cpu=cpu_delta(before, after),
        statements=count,
        top=top,
        idle_seconds=args.idle_seconds,
        idle_cpu=idle_cpu,
        idle_statements=idle_count,
    )


def report(run: Run, base: Run | None) -> dict[str, Any]:
    total = sum(run.requests)
    rate = total / run.seconds
    hubs_cpu = sum(run.cpu.hubs)
    ours = hubs_cpu + run.cpu.database + run.cpu.wrk + run.cpu.bench
    others = max(0.0, run.cpu.machine_busy - ours)
    cores = run.cpu.machine_total / run.seconds
    figures = {
        "hubs": run.hubs,
        "requests_per_s": round(rate, 1),
        "per_hub_requests_per_s": [round(r / run.seconds, 1) for r in run.requests],
        "errors": run.errors,
        "p50_ms": [round(v, 1) for v in run.p50_ms],
        "p99_ms": [round(v, 1) for v in run.p99_ms],
        "hub_cpu_ms_per_request": round(1000 * hubs_cpu / total, 3),
        "db_cpu_ms_per_request": round(1000 * run.cpu.database / total, 3),
        "db_cpu_s_per_1000_requests": round(run.cpu.database / total * 1000, 3),
        "db_share_of_hubs_plus_db": round(run.cpu.database / (hubs_cpu + run.cpu.database), 3),
        "statements_per_request": round(run.statements / total, 2),
        "cores_used": {
            "hubs": round(hubs_cpu / run.seconds, 2),
            "database": round(run.cpu.database / run.seconds, 2),
            "wrk": round(run.cpu.wrk / run.seconds, 2),
            "others_on_machine": round(others / run.seconds, 2),
            "idle": round(cores - run.cpu.machine_busy / run.seconds, 2),
        },
    }
    if run.idle_cpu is not None:
        figures["without_load"] = {
            "hubs_cores": round(sum(run.idle_cpu.hubs) / run.idle_seconds, 3),
            "database_cores": round(run.idle_cpu.database / run.idle_seconds, 3),
            "statements_per_s": round(run.idle_statements / run.idle_seconds, 1),
        }
    if base is not None:
        base_rate = sum(base.requests) / base.seconds
        figures["throughput_vs_1_hub"] = round(rate / base_rate, 2)
    print(
        f"\n== {run.hubs} hub(s): {rate:.0f} req/s in total over {run.seconds:.0f} s,"
        f" errors {run.errors}"
    )
    print(json.dumps(figures, indent=1))
    for sample in run.samples[:2]:
        print(f"  first error seen: {sample}")
    print("  costliest statements (calls, total ms, statement):")
    for calls, ms, query in run.top:
        print(f"  {calls:8d} {ms:9.0f}  {query[:110]}")
    return figures


def write_json(path: Path, figures: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(figures, indent=1))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hubs", default="1,2,4", help="hub counts to measure, in turn")
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32, help="in total, split over hubs")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=16.0,
        help="a window without load first (longer than the scheduler's 15 s interval)",
    )
    parser.add_argument(
        "--scheduler-interval",
        type=float,
        default=15.0,
        help="the hubs' scheduler_interval_s (calchub's default: 15); a long one, with"
        " --idle-seconds long enough for the first pass, keeps the duties out of the window",
    )
    parser.add_argument("--only", help="send only this kind of request (e.g. ping, exec)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    counts = [int(n) for n in args.hubs.split(",")]
    weights = mix(args.only)
    folder = Path(tempfile.mkdtemp(prefix="calchub-scale-"))
    (folder / "projects").mkdir()
    pg = Postgres()
    try:
        pg.start()
        started = time.monotonic()
        site = await load_site(pg.url, args.accounts, args.projects)
        print(
            f"loaded {args.accounts} accounts and {args.projects} projects in"
            f" {time.monotonic() - started:.1f} s; {os.cpu_count()} cores;"
            f" mix: " + ", ".join(f"{w}% {what}" for w, _, what in weights)
        )
        script = lua_script(site, folder, weights)
        runs: list[Run] = []
        figures = []
        for n in counts:
            runs.append(await measure(n, site, pg, script, folder, args))
            figures.append(report(runs[-1], runs[0] if len(runs) > 1 else None))
        if args.json:
            write_json(Path(args.json), figures)
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
