"""Which data folder and database a command works on, and whether they hold a site yet.

Administration commands name both on standard error and refuse to start a new, empty site
unless asked to (`--init`): run from the wrong folder, they would otherwise create a fresh
`./calchub-data` and act on a throw-away database while reporting success.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from calchub.config import Settings
from calchub.db.engine import async_url, create_engine


class NoSite(Exception):
    """The data folder or the database does not exist yet, and nobody asked to create it."""


def shown_database_url(settings: Settings) -> str:
    """The database URL without its password, fit for a terminal or a log."""
    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def describe(settings: Settings) -> str:
    return f"data folder {settings.data_dir.resolve()}, database {shown_database_url(settings)}"


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file, or None for PostgreSQL."""
    url = make_url(async_url(settings.resolved_database_url))
    if url.get_backend_name() != "sqlite":
        return None
    return Path(url.database or "")


async def database_exists(settings: Settings) -> bool:
    """Whether the database holds calchub's schema (at any revision)."""
    path = sqlite_path(settings)
    if path is not None:
        # Opening a missing SQLite file would create it: look before touching.
        return path.is_file() and path.stat().st_size > 0
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as conn:
            return bool(
                await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
            )
    finally:
        await engine.dispose()


async def require_site(settings: Settings, init: bool) -> None:
    """Raise NoSite unless both the data folder and the database exist (or `init` is set)."""
    if init:
        return
    missing = []
    if not settings.data_dir.is_dir():
        missing.append(f"no data folder {settings.data_dir.resolve()}")
    if not await database_exists(settings):
        missing.append(f"no calchub database at {shown_database_url(settings)}")
    if missing:
        raise NoSite(
            f"{' and '.join(missing)}; run this where the server's data folder is, or give "
            "--data-dir, --database-url or --config (or the CALCHUB_* variables) as the "
            "server has them; add --init to create a new, empty site there"
        )


PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def make_private(settings: Settings) -> None:
    """Create the data folder private to the server's user, and take back access that an
    older version (or an operator) granted to others: the folder, and the SQLite database
    with its journal files, hold email addresses and password hashes."""
    settings.data_dir.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    os.chmod(settings.data_dir, PRIVATE_FOLDER)
    database = sqlite_path(settings)
    if database is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{database}{suffix}", PRIVATE_FILE)
