"""Which install of calchub this is, and what it owns on this machine.

Every install (one database, however many hub processes share it) gets an id and a block of
project uids, recorded in its database, and registers both with its runtime folder in a
machine-wide file (`install_registry`, by default /var/lib/calchub/installs.json as root).
Two installs on one host, a staging and a production site say, then never run projects
under the same uid or share a runtime folder; a start that would is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.config import Settings
from calchub.datafolder import shown_database_url
from calchub.db.tables import counters, projects

# Blocks of project uids: block k holds k*BLOCK .. (k+1)*BLOCK - 1. Block 1 is where every
# install took its uids before installs had blocks of their own.
BLOCK = 1_000_000
FIRST_BLOCK, LAST_BLOCK = 1, 4_000
# Named integers in the counters table.
INSTALL_ID = "install_id"
UID_BLOCK = "install_uid_block"
UID_COUNTER = "project_uid"
DEFAULT_REGISTRY = Path("/var/lib/calchub/installs.json")


class InstallClash(ValueError):
    """This install would share uids or its runtime folder with another one on the host."""


@dataclass(frozen=True)
class Install:
    install_id: int
    uid_block: int

    @property
    def name(self) -> str:
        return f"{self.install_id:016x}"[:12]

    @property
    def uid_first(self) -> int:
        return self.uid_block * BLOCK

    @property
    def uid_last(self) -> int:
        return self.uid_first + BLOCK - 1


SHARED_RUN_ROOT = Path("/run/calchub")


def registry_path(settings: Settings) -> Path | None:
    if settings.install_registry:
        return Path(settings.install_registry)
    return DEFAULT_REGISTRY if os.geteuid() == 0 else None


def runtime_root(settings: Settings, install: Install) -> Path:
    """The runtime folder: as configured, else one of this install's own."""
    if settings.runtime_root:
        return Path(settings.runtime_root)
    if os.geteuid() == 0:
        _make_traversable(SHARED_RUN_ROOT)
        return SHARED_RUN_ROOT / install.name
    return settings.data_dir / "run"


def _make_traversable(folder: Path) -> None:
    """Every install's runtime folder lies under this machine-wide one, which project uids
    must pass through (o+x) to reach their agent and home. Set its mode exactly: a server's
    umask of 077 made it private when the server created it, and a folder left so by an
    earlier version would keep every project from starting."""
    folder.mkdir(mode=0o711, parents=True, exist_ok=True)
    os.chmod(folder, 0o711)  # noqa: S103


async def claim(engine: AsyncEngine, settings: Settings) -> Install:
    """This install's identity (made on first start) registered on this machine; raises
    InstallClash when another install has its uids or runtime folder."""
    registry = registry_path(settings)
    install = await _recorded(engine)
    if install is None:
        with _locked(registry) as entries:
            block = await _legacy_block(engine) or _free_block(entries)
            await _record(engine, secrets.randbits(62), block)
        install = await _recorded(engine)
        assert install is not None
    if registry is not None:
        with _locked(registry) as entries:
            _register(entries, install, settings)
    return install


async def _recorded(engine: AsyncEngine) -> Install | None:
    async with engine.connect() as conn:
        rows = dict(
            (
                await conn.execute(
                    select(counters.c.name, counters.c.value).where(
                        counters.c.name.in_([INSTALL_ID, UID_BLOCK])
                    )
                )
            ).all()
        )
    if INSTALL_ID not in rows or UID_BLOCK not in rows:
        return None
    return Install(int(rows[INSTALL_ID]), int(rows[UID_BLOCK]))


async def _legacy_block(engine: AsyncEngine) -> int | None:
    """The block of the uids projects already have (a database from before blocks)."""
    async with engine.connect() as conn:
        highest = await conn.scalar(select(func.max(projects.c.uid)))
    return int(highest) // BLOCK if highest else None


def _free_block(entries: dict[str, Any]) -> int:
    taken = {int(e.get("uid_block", 0)) for e in entries.values() if isinstance(e, dict)}
    for block in range(FIRST_BLOCK, LAST_BLOCK + 1):
        if block not in taken:
            return block
    raise InstallClash("no block of project uids is left on this machine")


async def _record(engine: AsyncEngine, install_id: int, block: int) -> None:
    """Store the identity, unless another hub of this install did so first."""
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(counters),
                [
                    {"name": INSTALL_ID, "value": install_id},
                    {"name": UID_BLOCK, "value": block},
                ],
            )
            # Project uids continue from the start of the block (or where they are).
            current = await conn.scalar(
                select(counters.c.value).where(counters.c.name == UID_COUNTER)
            )
            if current is not None and current < block * BLOCK - 1:
                await conn.execute(
                    counters.update()
                    .where(counters.c.name == UID_COUNTER)
                    .values(value=block * BLOCK - 1)
                )
    except IntegrityError:
        pass


def _register(entries: dict[str, Any], install: Install, settings: Settings) -> None:
    mine = install.name
    folder = str(runtime_root(settings, install).absolute())
    for name, entry in entries.items():
        if name == mine or not isinstance(entry, dict):
            continue
        where = f"{entry.get('database', '?')} (data folder {entry.get('data_dir', '?')})"
        if int(entry.get("uid_block", -1)) == install.uid_block:
            raise InstallClash(
                f"project uids {install.uid_first}-{install.uid_last} of this site are those "
                f"of another calchub install on this machine, {where}; projects of both would "
                f"run as the same users. If that install is gone, remove its entry {name!r} "
                "from the install registry"
            )
        if entry.get("runtime_root") == folder:
            raise InstallClash(
                f"runtime folder {folder} belongs to another calchub install on this machine, "
                f"{where}; give this one a runtime_root of its own"
            )
    entries[mine] = {
        "uid_block": install.uid_block,
        "uid_first": install.uid_first,
        "uid_last": install.uid_last,
        "runtime_root": folder,
        "database": shown_database_url(settings),
        "data_dir": str(settings.data_dir.absolute()),
    }


@contextlib.contextmanager
def _locked(registry: Path | None) -> Iterator[dict[str, Any]]:
    """The registry's entries, read and written back under an exclusive lock."""
    if registry is None:
        yield {}
        return
    registry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.open(
        registry.with_name(registry.name + ".lock"),
        os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
        0o600,
    )
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entries = json.loads(registry.read_text()).get("installs", {})
        except FileNotFoundError:
            entries = {}
        except (ValueError, AttributeError) as exc:
            raise InstallClash(f"the install registry {registry} is unreadable: {exc}") from None
        before = json.dumps(entries, sort_keys=True)
        yield entries
        if json.dumps(entries, sort_keys=True) != before:
            tmp = registry.with_name(f".{registry.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"installs": entries}, indent=2, sort_keys=True) + "\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, registry)
    finally:
        os.close(lock)
