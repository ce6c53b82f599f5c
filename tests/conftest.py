"""Fixtures shared by the whole suite. The database backend is chosen with
CALCHUB_TEST_DATABASE=sqlite|postgresql (scripts/test runs both)."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import scratch
from tests.harness import ApiClient, Database, Loop, Server, throwaway_database
from tests.smtp_sink import SmtpSink


@pytest.fixture(scope="session")
def loop() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory, loop: Loop) -> Iterator[str]:
    with throwaway_database(tmp_path_factory.mktemp("db") / "calchub.db", loop) as url:
        yield url


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, smtp: SmtpSink
) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("data"), database_url, smtp.url)
    srv.admin_key = srv.start()  # type: ignore[attr-defined]
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def api(server: Server) -> Iterator[ApiClient]:
    client = ApiClient(server.url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def admin_key(server: Server) -> str:
    key = server.admin_key  # type: ignore[attr-defined]
    assert key and key.startswith("sk_")
    return key


@pytest.fixture(scope="session")
def db(database_url: str, loop: Loop, server: Server) -> Iterator[Database]:
    database = Database(database_url, loop)
    yield database
    database.close()


@dataclass(frozen=True)
class User:
    account_id: str
    api_key: str
    email: str
    password: str
    first_name: str
    last_name: str


_counter = itertools.count()


@pytest.fixture
def make_user(api: ApiClient, admin_key: str) -> Callable[..., User]:
    """Create a fresh account (through the API, as an admin) with its own API key."""

    def make(
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        password: str = "correct horse",
    ) -> User:
        n = next(_counter)
        tag = uuid.uuid4().hex[:8]
        first = first_name or f"First{tag}"
        last = last_name or f"Last{n}"
        address = email or f"user-{tag}@example.com"
        reply = api.call(
            "create_account",
            admin_key,
            {
                "first_name": first,
                "last_name": last,
                "email_address": address,
                "password": password,
                "agreed_to_terms": True,
                "get_api_key": True,
            },
        )
        assert reply.event == "account_created", reply.body
        return User(reply["account_id"], reply["api_key"], address.lower(), password, first, last)

    return make


@pytest.fixture
def user(make_user: Callable[..., User]) -> User:
    return make_user()


@pytest.fixture
def data_dir(server: Server) -> Path:
    return server.data_dir


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing API test shows the end of the server's log (tracebacks of 500s are there)."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("server")
    if report.failed and isinstance(server, Server):
        report.sections.append(("calchub server log (tail)", "".join(server.output[-60:])))


def pytest_configure(config: pytest.Config) -> None:
    # Servers started by tests register their installs (uid blocks) in the session's own
    # registry, not in the machine's.
    os.environ["CALCHUB_INSTALL_REGISTRY"] = str(scratch.session.root / "installs.json")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the session's sandboxes and remove its project folders, whatever the outcome
    (a killed session's are swept by the next one)."""
    scratch.session.finish()
