"""Which listings the database writes (userquery/json_rows.py), and the SQL they become."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnClause

from calchub.userquery.json_rows import row_json
from calchub.userquery.tables.accounts import SPECS as ACCOUNT_SPECS
from calchub.userquery.tables.projects import PROJECTS_ALL

DIALECTS = [sqlite.dialect(), postgresql.dialect()]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_listing_becomes_one_sql_text_with_every_value_in_it(dialect: Dialect) -> None:
    row = row_json(PROJECTS_ALL, ["project_id", "title", "users", "last_edited"], dialect)
    assert isinstance(row, ColumnClause) and row.is_literal
    assert "projects.project_id" in row.name and "FROM project_users AS u" in row.name
    # Every constant is in the text: the statement caches as one, whoever runs it.
    assert "?" not in row.name and "%(" not in row.name and "$1" not in row.name


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("field", ["settings", "status"])
def test_fields_only_python_writes_leave_the_listing_to_the_general_path(
    dialect: Dialect, field: str
) -> None:
    assert row_json(PROJECTS_ALL, ["project_id", field], dialect) is None


def test_tables_that_did_not_opt_in_are_never_written_by_the_database() -> None:
    for spec in ACCOUNT_SPECS:
        assert row_json(spec, ["account_id"], sqlite.dialect()) is None


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_row_tests_for_null_only_the_values_that_can_be_null(dialect: Dialect) -> None:
    # project_id, title and users are never null: written as they are, the row starts with
    # the first; last_edited can be null, so its key may be left out.
    row = row_json(PROJECTS_ALL, ["project_id", "title", "users", "last_edited"], dialect)
    assert isinstance(row, ColumnClause)
    assert row.name.count("coalesce(',") == 1 and "coalesce(',\"last_edited\":'" in row.name
    assert row.name.lstrip("(").startswith("'{\"project_id\":'")
    assert "'{' || substr(" not in row.name
    # A first value that can be null: every key after it may be the first, so the leading
    # comma is cut off whichever it is.
    row = row_json(PROJECTS_ALL, ["last_edited", "project_id"], dialect)
    assert isinstance(row, ColumnClause) and row.name.lstrip("(").startswith("'{' || substr(")
