"""aiosqlite's SQLAlchemy dialect, except that it does not send a rollback or a commit to
the driver when no transaction is open.

Each is a hop to aiosqlite's thread (about 0.3 ms here), and SQLAlchemy sends one whenever
a connection goes back to the pool or a `begin()` block ends, even when only reads ran:
with SQLite's driver a read opens no transaction, so there is nothing to end. Whether one
is open is SQLite's own flag (sqlite3_get_autocommit), read from the connection while no
statement of it runs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite

DRIVER_NAME = "calchub_aiosqlite"


def _transaction_open(connection: Any) -> bool:
    """True unless the driver says no transaction is open (also when it cannot tell)."""
    try:
        return bool(connection.driver_connection.in_transaction)
    except Exception:  # a closed or unusual connection: let the driver decide, as before
        return True


class SQLiteDialect(SQLiteDialect_aiosqlite):
    supports_statement_cache = True

    def do_rollback(self, dbapi_connection: Any) -> None:
        if _transaction_open(dbapi_connection):
            super().do_rollback(dbapi_connection)  # type: ignore[no-untyped-call]

    def do_commit(self, dbapi_connection: Any) -> None:
        if _transaction_open(dbapi_connection):
            super().do_commit(dbapi_connection)  # type: ignore[no-untyped-call]


registry.register(f"sqlite.{DRIVER_NAME}", __name__, "SQLiteDialect")
