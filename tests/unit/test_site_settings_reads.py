"""Site settings kept in memory, on the database under test: a request may reuse the
change-counter read its key check made, since that read began after it arrived; the next
request, and any read serving no request, sees every change committed before it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from calchub import arrivals
from calchub.config import Settings
from calchub.db.counters import counter_reader_for
from calchub.db.engine import create_engine, migrate
from calchub.site import SiteSettings
from tests.harness import arriving

SET_HELP = text("UPDATE server_settings SET value = :value WHERE name = 'help_email'")
ADD_HELP = text("INSERT INTO server_settings (name, value) VALUES ('help_email', :value)")


@pytest.fixture(autouse=True)
def _no_served_request() -> Iterator[None]:
    arrivals.serving(None)
    yield
    arrivals.serving(None)


async def test_a_request_shares_its_read_and_the_next_one_sees_the_change(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    reader = counter_reader_for(engine)
    site = SiteSettings(engine, Settings(database_url=database_url), reader)
    try:
        async with engine.begin() as conn:
            await conn.execute(ADD_HELP, {"value": "first@example.org"})
        arrivals.serving(arriving())
        assert await site.get("help_email") == "first@example.org"
        async with engine.begin() as conn:
            await conn.execute(SET_HELP, {"value": "second@example.org"})
        # Committed after this request arrived: it may or may not see it; it reuses its read.
        assert await site.get("help_email") == "first@example.org"
        # The next request arrived after the commit: it sees it.
        arrivals.serving(arriving())
        assert await site.get("help_email") == "second@example.org"
        async with engine.begin() as conn:
            await conn.execute(SET_HELP, {"value": "third@example.org"})
        # A read serving no request always reads afresh.
        arrivals.serving(None)
        assert await site.get("help_email") == "third@example.org"
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM server_settings WHERE name = 'help_email'"))
        await reader.close()
        await engine.dispose()
