"""`calchub admin backup` and `restore`: a consistent copy of a running site, and its return.

A backup is a folder:

    manifest.json       what is inside, written last (a folder without it is incomplete)
    database.sqlite     SQLite's online backup: one consistent snapshot, taken while
                        the server keeps writing (or database.pgdump: pg_dump's custom
                        format, itself one snapshot of a PostgreSQL database)
    projects/           the project homes, copied with rsync -a --numeric-ids, so files
                        keep the project uids that own them; a home kept as a disk image
                        is copied as the folder of its files (a restored site makes the
                        image again when the project starts)

The database is copied first and the homes after it: a project created in between has a
home but no row (ignored), never a row without a home. Files written while rsync runs are
caught or not, file by file, as with any copy of a live file system.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url

from calchub import __version__, hosttools
from calchub.config import Settings
from calchub.datafolder import shown_database_url, sqlite_path
from calchub.db.engine import create_engine, current_revision, migrate
from calchub.runtime import RuntimeFailure, disk_images
from calchub.runtime.local import LocalRuntime

if TYPE_CHECKING:
    from calchub.hub import Hub

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_FILE = "database.pgdump"
PROJECTS = "projects"
# rsync's "some files vanished before they could be transferred": normal for live homes.
RSYNC_VANISHED = 24


class BackupError(Exception):
    """A backup or restore cannot be made; the message says why and what to do."""


# -- backup -------------------------------------------------------------------------------


async def backup(hub: Hub, dest: Path) -> dict[str, Any]:
    """Copy the site's database and project homes into the new folder `dest`."""
    if problem := hosttools.missing(*hosttools.COPY_TOOL):
        raise BackupError(f"backups copy project homes with rsync, but {problem}")
    await asyncio.to_thread(_make_dest, dest)
    settings = hub.settings
    revision = await current_revision(hub.engine)
    database: dict[str, Any] = {"kind": hub.engine.dialect.name, "revision": revision}
    path = sqlite_path(settings)
    if path is not None:
        database["file"] = SQLITE_FILE
        await asyncio.to_thread(_sqlite_backup, path, dest / SQLITE_FILE)
    else:
        database["file"] = PG_FILE
        await _pg_dump(settings.resolved_database_url, dest / PG_FILE)
    database["sha256"], database["bytes"] = await asyncio.to_thread(
        _sha256_and_size, dest / database["file"]
    )
    # An empty folder when there are no homes yet, so rsync always has a source.
    homes = settings.resolved_projects_root
    await asyncio.to_thread(homes.mkdir, mode=0o711, parents=True, exist_ok=True)
    # Disk images are copied as their files: an image copied while mounted would not be a
    # consistent file system, and a folder restores into any kind of home.
    await _rsync(homes, dest / PROJECTS, delete=False, exclude=f"/{disk_images.IMAGES_FOLDER}")
    await _copy_image_homes(hub, dest / PROJECTS)
    manifest = {
        "format": FORMAT,
        "calchub_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "projects": await asyncio.to_thread(_tree_summary, dest / PROJECTS),
    }
    await asyncio.to_thread(_write_manifest, dest, manifest)
    return manifest


def _make_dest(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty folder")
    # Password hashes and users' files: readable by root (or the server's user) only.
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    (dest / PROJECTS).mkdir(mode=0o700)


def _write_manifest(dest: Path, manifest: dict[str, Any]) -> None:
    partial = dest / (MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.replace(dest / MANIFEST)


def _sqlite_backup(source_path: Path, target_path: Path) -> None:
    if not source_path.is_file():
        raise BackupError(f"no SQLite database at {source_path}")
    source = sqlite3.connect(source_path, timeout=30)
    target = sqlite3.connect(target_path)
    try:
        # One step (all pages) under one read transaction: a consistent snapshot while
        # the server's writers go on in the write-ahead log.
        source.backup(target)
        # A self-contained file: no write-ahead log beside it to lose in a copy.
        target.execute("PRAGMA journal_mode=DELETE")
        (result,) = target.execute("PRAGMA integrity_check").fetchone()
        if result != "ok":
            raise BackupError(f"the copied database fails SQLite's integrity check: {result}")
    finally:
        target.close()
        source.close()


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for pg_dump/pg_restore, with the password in the environment
    (command lines are visible to every user of the machine)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    query = {("sslmode" if k == "ssl" else k): v for k, v in parsed.query.items()}
    plain = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=query,
    )
    return plain.render_as_string(hide_password=False), env


async def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace").strip()


def _need(program: str, package: str) -> None:
    if problem := hosttools.missing(program, package):
        raise BackupError(problem)


async def _pg_dump(url: str, target: Path) -> None:
    _need("pg_dump", "postgresql-client")
    uri, env = _libpq(url)
    code, output = await _run(
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(target),
         "--dbname", uri],
        env,
    )  # fmt: skip
    if code != 0:
        raise BackupError(f"pg_dump failed: {output}")


async def _copy_image_homes(hub: Hub, dest: Path) -> None:
    runtime = hub.runtime
    if not isinstance(runtime, LocalRuntime):
        return  # only the local runtime keeps homes as images
    for project_id in runtime.image_homes():
        try:
            async with runtime.image_home_files(project_id) as files:
                await _rsync(files, dest / project_id, delete=False)
        except RuntimeFailure as exc:
            raise BackupError(f"the home of project {project_id} cannot be read: {exc}") from None


async def _rsync(source: Path, target: Path, *, delete: bool, exclude: str = "") -> None:
    argv = ["rsync", "-a", "--numeric-ids", "-H", "--sparse"]
    if delete:
        argv.append("--delete")
    if exclude:
        argv.append(f"--exclude={exclude}")
    code, output = await _run([*argv, f"{source}/", f"{target}/"])
    if code not in (0, RSYNC_VANISHED):
        raise BackupError(f"copying the project homes failed (rsync exit {code}): {output}")


def _sha256_and_size(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _tree_summary(root: Path) -> dict[str, Any]:
    homes = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    files = size = 0
    for _folder, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(_folder, name)).st_size
    return {"folder": PROJECTS, "homes": len(homes), "files": files, "bytes": size}


def describe_backup(dest: Path, manifest: dict[str, Any]) -> str:
    database, projects = manifest["database"], manifest["projects"]
    return (
        f"Backed up to {dest.resolve()}: the {database['kind']} database "
        f"({database['bytes']} bytes, schema revision {database['revision']}) and "
        f"{projects['homes']} project homes ({projects['files']} files, "
        f"{projects['bytes']} bytes)."
    )


# -- restore ------------------------------------------------------------------------------


def read_manifest(src: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(
            f"{src} holds no {MANIFEST}: not a calchub backup, or an unfinished one"
        ) from None
    except ValueError as exc:
        raise BackupError(f"{src / MANIFEST} is not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src} is a backup of format {manifest.get('format')!r}, not {FORMAT}")
    return manifest


async def restore(settings: Settings, src: Path, *, force: bool) -> dict[str, Any]:
    """Bring the backup in `src` back into the settings' data folder, database and project
    homes. They must be empty (or missing) unless `force`; the server must be stopped."""
    manifest = await asyncio.to_thread(read_manifest, src)
    database = manifest["database"]
    dump = src / database["file"]
    await asyncio.to_thread(_check_dump, dump, database["sha256"])
    kind = "sqlite" if sqlite_path(settings) is not None else "postgresql"
    if database["kind"] != kind:
        raise BackupError(
            f"the backup holds a {database['kind']} database, but the target "
            f"{shown_database_url(settings)} is {kind}: restore into the same kind"
        )
    homes = settings.resolved_projects_root
    # Check everything before changing anything.
    if not force:
        if await asyncio.to_thread(_has_entries, homes):
            raise BackupError(
                f"the project homes folder {homes} is not empty; --force replaces its contents"
            )
        if await _database_in_use(settings):
            raise BackupError(
                f"the database {shown_database_url(settings)} is not empty; "
                "--force replaces its contents"
            )
    _need("rsync", "rsync")
    await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
    path = sqlite_path(settings)
    if path is not None:
        await asyncio.to_thread(_sqlite_restore, dump, path)
    else:
        await _pg_restore(settings.resolved_database_url, dump, clean=force)
    # A backup from an older calchub: bring its schema up to date now, as serve would.
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    # Project users must be able to reach their homes (as the runtime makes the folder).
    await asyncio.to_thread(homes.mkdir, mode=0o711, parents=True, exist_ok=True)
    await _rsync(src / PROJECTS, homes, delete=True)
    return manifest


def _check_dump(dump: Path, expected: str) -> None:
    if not dump.is_file() or _sha256_and_size(dump)[0] != expected:
        raise BackupError(f"{dump} is missing or damaged (its checksum differs from the manifest)")


def _has_entries(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


async def _database_in_use(settings: Settings) -> bool:
    path = sqlite_path(settings)
    if path is not None:
        return await asyncio.to_thread(lambda: path.is_file() and path.stat().st_size > 0)
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return bool(names)


def _sqlite_restore(dump: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".restoring")
    shutil.copyfile(dump, partial)
    with partial.open("rb") as fh:
        os.fsync(fh.fileno())
    # The old database's write-ahead log would be replayed into the restored file.
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    os.replace(partial, path)


async def _pg_restore(url: str, dump: Path, *, clean: bool) -> None:
    _need("pg_restore", "postgresql-client")
    uri, env = _libpq(url)
    argv = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
            "--single-transaction", "--dbname", uri]  # fmt: skip
    if clean:
        argv += ["--clean", "--if-exists"]
    code, output = await _run([*argv, str(dump)], env)
    if code != 0:
        raise BackupError(f"pg_restore failed: {output}")


def describe_restore(src: Path, settings: Settings, manifest: dict[str, Any]) -> str:
    projects = manifest["projects"]
    return (
        f"Restored the backup of {manifest['created']} from {src.resolve()} into "
        f"{shown_database_url(settings)} and {settings.resolved_projects_root.resolve()} "
        f"({projects['homes']} project homes). Start the server to use it."
    )
