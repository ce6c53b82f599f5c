"""The texts of listing rows kept by version (userquery/row_texts.py): what a lookup finds,
the bounds, which rows leave first, and that every table a written row reads is one whose
changes move the version."""

from __future__ import annotations

import importlib
import re

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnClause

from calchub.userquery.json_rows import field_json, row_json
from calchub.userquery.registry import TABLES
from calchub.userquery.row_texts import ENTRY_OVERHEAD, RowTexts

versions_migration = importlib.import_module(
    "calchub.db.migrations.versions.0024_project_row_versions"
)

SHAPE = ("projects_all", ("project_id", "title"))
OTHER = ("projects", ("project_id", "title"))


def test_a_text_is_found_only_for_its_listing_id_and_version() -> None:
    kept = RowTexts()
    kept.put(SHAPE, "a", 1, b'{"a":1}')
    assert kept.get(SHAPE, [("a", 1), ("a", 2), ("b", 1)]) == [b'{"a":1}', None, None]
    assert kept.get(OTHER, [("a", 1)]) == [None]
    assert kept.has(SHAPE) and not kept.has(OTHER)
    kept.put(SHAPE, "a", 2, b'{"a":2}')
    assert kept.get(SHAPE, [("a", 2), ("a", 1)]) == [b'{"a":2}', b'{"a":1}']
    assert len(kept) == 2 and kept.size == 14 + 2 * ENTRY_OVERHEAD


def test_the_least_recently_used_leave_first_within_the_bounds() -> None:
    kept = RowTexts(max_entries=3)
    for n in range(3):
        kept.put(SHAPE, str(n), 0, b"x")
    assert kept.get(SHAPE, [("0", 0)]) == [b"x"]  # "0" is now the most recent
    kept.put(SHAPE, "3", 0, b"x")
    assert kept.get(SHAPE, [("0", 0), ("1", 0), ("2", 0), ("3", 0)]) == [b"x", None, b"x", b"x"]
    assert len(kept) == 3
    # The listing used longest ago gives up its rows first.
    kept.put(OTHER, "a", 0, b"y")
    assert len(kept) == 3 and kept.get(OTHER, [("a", 0)]) == [b"y"]
    assert kept.get(SHAPE, [("0", 0), ("2", 0), ("3", 0)]).count(None) == 1


def test_bytes_are_bounded_and_too_large_a_text_is_not_kept() -> None:
    kept = RowTexts(max_bytes=3 * (ENTRY_OVERHEAD + 100))
    for n in range(10):
        kept.put(SHAPE, str(n), 0, b"x" * 100)
        assert kept.size <= kept.max_bytes
    assert len(kept) == 3
    kept.put(SHAPE, "big", 0, b"x" * kept.max_bytes)
    assert kept.get(SHAPE, [("big", 0)]) == [None] and len(kept) == 3
    kept.clear()
    assert len(kept) == 0 and kept.size == 0 and not kept.has(SHAPE)


def test_nothing_is_kept_with_no_room() -> None:
    kept = RowTexts(max_entries=0)
    kept.put(SHAPE, "a", 0, b"x")
    assert len(kept) == 0 and kept.get(SHAPE, [("a", 0)]) == [None]


# What the versions' triggers follow (migration 0024): the row and its members.
VERSIONED = {"projects", "project_users"}


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_rows_kept_by_version_read_only_tables_whose_changes_move_it(dialect: Dialect) -> None:
    """A field the database writes from any other table would be shown stale from a kept
    text: its table must move the version first (a trigger in a migration)."""
    for spec in TABLES.values():
        if spec.row_version is None:
            continue
        assert spec.storage.name in VERSIONED
        for name in spec.get_fields:
            if field_json(spec, name, dialect.name) is None:
                continue
            row = row_json(spec, [name], dialect)
            assert isinstance(row, ColumnClause)
            read = set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", row.name, re.IGNORECASE))
            assert read <= VERSIONED, (spec.name, name, read)


def test_the_triggers_follow_every_write_to_those_tables() -> None:
    sqlite_events = {when for _, when, _ in versions_migration.SQLITE_TRIGGERS}
    for table in VERSIONED:
        for event in ("INSERT", "UPDATE"):
            assert f"AFTER {event} ON {table}" in sqlite_events
    assert "AFTER DELETE ON project_users" in sqlite_events
    postgres_events = " ".join(when for _, when, _ in versions_migration.PG_TRIGGERS)
    assert "BEFORE INSERT OR UPDATE ON projects" in postgres_events
    assert "INSERT OR UPDATE OR DELETE ON project_users" in postgres_events
    assert "TRUNCATE ON project_users" in postgres_events
