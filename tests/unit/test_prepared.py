"""A statement prepared for a driver: the driver gets, in its order, the values SQLAlchemy
would have sent, and the rows come back as SQLAlchemy would have given them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.engine import Dialect

from calchub.db.prepared import prepare

things = Table(
    "things",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("flag", Boolean),
    Column("at", DateTime),
    Column("doc", JSON),
)
DIALECTS: list[Dialect] = [sqlite.dialect(), asyncpg.dialect()]  # type: ignore[no-untyped-call]
NAMED = select(things.c.name, things.c.at, things.c.doc).where(
    things.c.at >= bindparam("since", type_=DateTime),
    things.c.name == bindparam("name"),
    things.c.flag == bindparam("flag", type_=Boolean),
)
JAN = datetime(2024, 1, 1, 12, 30)


def _by_value(name: str, since: datetime) -> Any:
    return select(things.c.id).where(things.c.name == name, things.c.at >= since)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_parameters_go_in_the_drivers_order_converted_as_sqlalchemy_would(
    dialect: Dialect,
) -> None:
    prepared = prepare(NAMED, dialect)
    assert prepared is not None
    assert prepared.names == ("since", "name", "flag")
    compiled = NAMED.compile(dialect=dialect)
    params = {"flag": True, "name": "x", "since": JAN}
    assert prepared.arguments(params) == _driver_values(compiled, params)
    assert prepared.converted == tuple(n for n in prepared.names if n in compiled._bind_processors)
    assert "name" not in prepared.converted  # a plain string goes as it is


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_shape_takes_each_statements_own_values(dialect: Dialect) -> None:
    first = _by_value("a", JAN)
    prepared = prepare(first, dialect, first._generate_cache_key())
    assert prepared is not None
    later = _by_value("b", datetime(2025, 6, 1))
    key = later._generate_cache_key()
    assert key is not None
    compiled = later.compile(dialect=dialect)
    assert prepared.sql == compiled.string
    assert prepared.arguments_of(key) == _driver_values(compiled)
    assert prepared.arguments_of(key)[0] == "b"


def _driver_values(compiled: Any, given: dict[str, Any] | None = None) -> list[Any]:
    """What SQLAlchemy's execution hands the driver for the compiled statement."""
    params = compiled.construct_params(given)
    processors = compiled._bind_processors
    return [
        processors[name](params[name]) if name in processors else params[name]
        for name in compiled.positiontup
    ]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_parameters_worked_out_at_execution_are_left_to_sqlalchemy(dialect: Dialect) -> None:
    assert prepare(select(things.c.id).where(things.c.id.in_([1, 2])), dialect) is None
    literal_three = literal(3, literal_execute=True)
    assert prepare(select(things.c.id).where(things.c.id == literal_three), dialect) is None


@pytest.fixture
def database(tmp_path: Any) -> Iterator[tuple[Any, sqlite3.Connection]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'things.db'}")
    things.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(things),
            [
                {"id": 1, "name": "x", "flag": True, "at": JAN, "doc": {"a": [1, None]}},
                {"id": 2, "name": "x", "flag": False, "at": JAN, "doc": None},
            ],
        )
    driver = sqlite3.connect(tmp_path / "things.db")
    try:
        yield engine, driver
    finally:
        driver.close()
        engine.dispose()


def test_rows_come_back_as_sqlalchemy_gives_them(database: tuple[Any, sqlite3.Connection]) -> None:
    engine, driver = database
    prepared = prepare(NAMED, sqlite.dialect())
    assert prepared is not None
    for flag in (True, False):
        params = {"since": datetime(2023, 1, 1), "name": "x", "flag": flag}
        with engine.connect() as conn:
            expected = conn.execute(NAMED, params).one()
        raw = driver.execute(prepared.sql, prepared.arguments(params)).fetchone()
        assert raw is not None
        row = prepared.make_row(raw, lambda: [])
        assert tuple(row) == tuple(expected) and row.at == JAN and row._fields == expected._fields


def test_plain_sql_rows_are_named_by_the_driver(database: tuple[Any, sqlite3.Connection]) -> None:
    _, driver = database
    statement = text("SELECT id, name FROM things WHERE id = :id")
    prepared = prepare(statement, sqlite.dialect())
    assert prepared is not None and prepared.names == ("id",)
    cursor = driver.execute(prepared.sql, prepared.arguments({"id": 2}))
    row = prepared.make_row(cursor.fetchone(), lambda: [d[0] for d in cursor.description])
    assert row.id == 2 and row.name == "x"


def test_a_statement_read_for_a_value_needs_no_column_names() -> None:
    # An aggregate without a label has no name to give a row's attribute.
    counted = select(func.count(things.c.id)).where(things.c.name == "x")
    for dialect in DIALECTS:
        prepared = prepare(counted, dialect, counted._generate_cache_key())
        assert prepared is not None and prepared.sql == counted.compile(dialect=dialect).string
