"""The domain in-process, without HTTP: a real Hub on a throw-away database, with the
runtime under test. Every test here runs against the in-process fake runtime and against
the bubblewrap runtime; the latter needs root and bubblewrap (skipped without them, except
under CI=true, where that is a failure)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace

import pytest
import pytest_asyncio

from calchub.accounts.creation import NewAccount, create_account
from calchub.actor import Actor
from calchub.config import Settings
from calchub.hub import Hub
from calchub.projects.creation import create_project
from tests.harness import Loop, throwaway_database
from tests.runtime.conftest import sandbox_problem
from tests.scratch import scratch_folder

RUNTIMES = ("fake", "local")


@pytest.fixture(scope="session")
def domain_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    loop = Loop()
    try:
        with throwaway_database(tmp_path_factory.mktemp("domain") / "calchub.db", loop) as url:
            yield url
    finally:
        loop.close()


@pytest_asyncio.fixture(scope="session", params=RUNTIMES)
async def hub(
    request: pytest.FixtureRequest,
    domain_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Hub]:
    name = request.param
    if name == "local" and (problem := sandbox_problem()):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and sandboxing is unavailable: {problem}")
        pytest.skip(problem)
    projects_root, runtime_root = scratch_folder("p"), scratch_folder("r")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp(f"hub-{name}"),
        database_url=domain_database,
        runtime=name,
        projects_root=str(projects_root),
        runtime_root=str(runtime_root),
        install_registry=os.environ["CALCHUB_INSTALL_REGISTRY"],
    )
    hub = await Hub.open(settings)
    hub.check_runtime()
    assert hub.runtime.problem is None, hub.runtime.problem
    try:
        yield hub
    finally:
        await hub.close()


@dataclass(frozen=True)
class Person:
    actor: Actor
    email: str


MakePerson = Callable[..., Awaitable[Person]]


@pytest_asyncio.fixture
async def make_person(hub: Hub) -> MakePerson:
    async def make(admin: bool = False) -> Person:
        email = f"p-{uuid.uuid4().hex[:10]}@example.com"
        new = NewAccount("Ada", "Lovelace", email, "correct horse")
        created = await create_account(
            hub,
            new,
            ip="domain-test",
            creator_is_admin=True,
            groups=["admin"] if admin else [],
            welcome=False,
        )
        return Person(Actor(account_id=created.account_id, is_admin=admin), email)

    return make


@pytest_asyncio.fixture
async def owner(make_person: MakePerson) -> Person:
    return await make_person()


@pytest_asyncio.fixture
async def stranger(make_person: MakePerson) -> Person:
    return await make_person()


MakeProject = Callable[..., Awaitable[str]]


@pytest_asyncio.fixture
async def make_project(hub: Hub) -> AsyncIterator[MakeProject]:
    """Projects owned by the given person, stopped again after the test."""
    made: list[str] = []

    async def make(person: Person, title: str = "domain") -> str:
        project_id = await create_project(hub, person.actor, title=title, description="")
        made.append(project_id)
        return project_id

    yield make
    for project_id in made:
        await hub.runtime.stop(project_id)


@pytest_asyncio.fixture
async def project(make_project: MakeProject, owner: Person) -> str:
    return await make_project(owner)


def as_admin(person: Person) -> Actor:
    return replace(person.actor, is_admin=True)
