"""The migrations build exactly the schema that db/tables.py describes."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from calchub.db.engine import MIGRATIONS_DIR
from calchub.db.tables import metadata


def test_migrations_match_the_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == []


def test_sessions_signed_in_before_public_ids_get_one_each(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sessions.db'}")
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, "0024")
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO web_sessions (token_hash, account_id, created, expire, ip_address)"
                    " VALUES (:h, :a, '2026-11-30 00:00:00', '2026-12-07 00:00:00', '10.0.0.1')"
                ),
                {"h": f"{n:064x}", "a": "00000000-0000-4000-8000-000000000000"},
            )
        command.upgrade(config, "head")
        rows = conn.execute(text("SELECT token_hash, id FROM web_sessions")).all()
        command.downgrade(config, "0024")
    engine.dispose()
    ids = [row.id for row in rows]
    assert len(rows) == 3 and len(set(ids)) == 3
    assert all(len(i) == 20 and i.isalnum() for i in ids)
    assert all(row.id not in row.token_hash for row in rows)
