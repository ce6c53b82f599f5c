"""A statement compiled once for a dialect, to run on that dialect's driver directly: its SQL
text, the order of its positional parameters with each one's bind processor, and its columns'
result conversions.

SQLAlchemy's execution looks these up again for every statement it runs and sets up a context
around them; a read that runs one statement many times on the driver itself (db/loop_reads.py,
db/driver_reads.py) needs them once. Which statements are prepared, how a prepared one is
found again and which connection runs it are those modules' business, not this one's.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.cache_key import CacheKey
from sqlalchemy.sql.compiler import SQLCompiler

Convert = Callable[[Any], Any]


class Prepared:
    """One statement in a dialect's SQL, what the driver takes as its parameters, and what
    turns a raw row into one whose columns are attributes holding what SQLAlchemy would have
    given. Built by `prepare`."""

    __slots__ = (
        "_columns",
        "_compiled",
        "_convert",
        "_dialect",
        "_process",
        "_row",
        "converted",
        "names",
        "sql",
    )

    def __init__(self, compiled: SQLCompiler, statement: Executable, dialect: Dialect) -> None:
        self._compiled = compiled
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        # What the driver cannot take as given (a boolean or a time as text for SQLite, ...)
        # goes through the bind processor SQLAlchemy would apply; None: as given.
        self._process: tuple[Convert | None, ...] = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self.names
        )
        # The parameters whose values are converted on their way to the driver.
        self.converted: tuple[str, ...] = tuple(
            name for name, process in zip(self.names, self._process, strict=True) if process
        )
        # A statement of plain SQL has no typed columns: its rows are taken as they come.
        self._columns: list[Any] = list(getattr(statement, "selected_columns", []))
        self._dialect = dialect
        # The row type and the columns' conversions, made at the first row: a statement read
        # only for a value never names its columns (an aggregate may have no name).
        self._row: Any = None
        self._convert: list[Convert | None] = []

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The values of the named parameters, in the driver's order, each converted as
        SQLAlchemy would convert it."""
        if not self.converted:
            return [params[name] for name in self.names]
        return [
            value if process is None else process(value)
            for process, value in zip(self._process, [params[n] for n in self.names], strict=True)
        ]

    def arguments_of(self, key: CacheKey) -> list[Any]:
        """`arguments` taken from another statement of this one's shape (its cache key equal
        to the one this was compiled with), as SQLAlchemy's statement cache takes them."""
        return self.arguments(self._compiled.construct_params(extracted_parameters=key.bindparams))

    def make_row(self, raw: Sequence[Any], names: Callable[[], list[str]]) -> Any:
        """The driver's row with its columns as attributes, each value as SQLAlchemy would
        have given it; `names` gives the columns' names of a plain SQL statement."""
        row = self._row
        if row is None:
            if not self._columns:
                plain: Any = namedtuple("Row", names())  # type: ignore[misc]
                return plain._make(raw)
            row = self._make_row_type()
        return row._make(
            value if convert is None else convert(value)
            for convert, value in zip(self._convert, raw, strict=True)
        )

    def _make_row_type(self) -> Any:
        dialect = self._dialect
        self._convert = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self._columns
        ]
        self._row = namedtuple("Row", [column.key for column in self._columns])  # type: ignore[misc]
        return self._row


def prepare(
    statement: Executable, dialect: Dialect, cache_key: CacheKey | None = None
) -> Prepared | None:
    """The statement compiled for the dialect's driver, or None when only SQLAlchemy's
    execution can run it: a driver that takes named parameters, or parameters worked out at
    execution (a list expanded, a value written into the SQL text). With `cache_key` (the
    statement's own), `arguments_of` takes the values of other statements of its shape."""
    compiled = statement.compile(dialect=dialect, cache_key=cache_key)  # type: ignore[attr-defined]
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        return None
    if compiled.literal_execute_params or compiled.post_compile_params:
        return None
    return Prepared(compiled, statement, dialect)
