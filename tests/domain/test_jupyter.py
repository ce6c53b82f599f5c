"""Jupyter through the domain: access, the result cache, sessions, kernel processes and
the global pool. Kernels need the sandboxed runtime; the fake one says they are missing."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from calchub.actor import Actor
from calchub.errors import Invalid, LimitExceeded, NotFound, Refused, Unavailable
from calchub.hub import Hub
from calchub.jupyter import cache, global_pool, kernels, sessions
from calchub.jupyter.execute import ExecuteCall, cached, execute, execute_in_project
from calchub.projects.lifecycle import stop_project
from tests.domain.conftest import MakeProject, Person

RANDOM = "import random; random.random()"


@pytest.fixture
def sandboxed(hub: Hub) -> None:
    if hub.settings.runtime == "fake":
        pytest.skip("kernels run only in sandboxed projects")


async def test_the_fake_runtime_says_kernels_are_unavailable(
    hub: Hub, owner: Person, project: str
) -> None:
    if hub.settings.runtime != "fake":
        pytest.skip("about the fake runtime")
    with pytest.raises(Unavailable) as caught:
        await execute(hub, owner.actor, ExecuteCall("1", "python3", project_id=project))
    assert "not available" in str(caught.value)


@pytest.mark.usefixtures("sandboxed")
async def test_results_are_cached_unless_asked_not_to(
    hub: Hub, owner: Person, project: str
) -> None:
    call = ExecuteCall(RANDOM, "python3", history=["import math"], project_id=project)
    first = await execute(hub, owner.actor, call)
    assert first.cache_id is None
    value = first.output[0]["data"]["text/plain"]
    again = await execute(hub, owner.actor, replace(call, history=["  import math "]))
    assert isinstance(again.cache_id, int)
    assert again.output == first.output
    assert again.created == first.created
    fresh = await execute(hub, owner.actor, replace(call, no_cache=True))
    assert fresh.cache_id is None
    assert fresh.output[0]["data"]["text/plain"] != value
    key = cache.cache_key(["import math"], RANDOM, "python3", project, None)
    by_key = await cached(hub, key, owner.actor.now)
    assert by_key is not None and by_key.output == fresh.output
    assert await cached(hub, "0" * 40, owner.actor.now) is None


def test_cache_key_is_cocalcs() -> None:
    # sha1 of JSON.stringify([["a=1"],"a","python3",null,null]) in JavaScript.
    key = cache.cache_key([" a=1 "], " a\n", " Python3 ", None, None)
    assert (
        key == hashlib.sha1(b'[["a=1"],"a","python3",null,null]', usedforsecurity=False).hexdigest()
    )
    assert key == cache.cache_key(["a=1"], "a", "python3", None, None)
    assert key != cache.cache_key(None, "a", "python3", None, None)


@pytest.mark.usefixtures("sandboxed")
async def test_strangers_are_refused(hub: Hub, stranger: Person, project: str) -> None:
    for attempt in (
        execute(hub, stranger.actor, ExecuteCall("1", "python3", project_id=project)),
        kernels.kernel_specs(hub, stranger.actor, project),
        kernels.kernel_processes(hub, stranger.actor, project),
        sessions.create_session(hub, stranger.actor, project, "python3"),
    ):
        with pytest.raises(Refused) as caught:
            await attempt
        assert str(caught.value) == "permission denied -- user must be collaborator on project"
    with pytest.raises(Invalid):
        await execute(hub, stranger.actor, ExecuteCall("1", "python3", project_id="x; rm"))


@pytest.mark.usefixtures("sandboxed")
async def test_project_key_runs_in_its_project_only(
    hub: Hub, owner: Person, make_project: MakeProject
) -> None:
    mine, other = await make_project(owner), await make_project(owner)
    key = Actor(account_id=None, project_id=mine)
    out = await execute_in_project(hub, key, ExecuteCall("6*7", "python3", project_id=mine))
    assert out == [{"data": {"text/plain": "42"}}]
    with pytest.raises(Refused):
        await execute_in_project(hub, key, ExecuteCall("1", "python3", project_id=other))


@pytest.mark.usefixtures("sandboxed")
async def test_a_stopped_project_starts_on_demand_and_its_kernels_end_with_it(
    hub: Hub, owner: Person, project: str
) -> None:
    assert not (await hub.runtime.status(project)).running
    specs = await kernels.kernel_specs(hub, owner.actor, project)
    assert "python3" in [s["name"] for s in specs]
    await execute_in_project(hub, owner.actor, ExecuteCall("1", "python3", project_id=project))
    assert await kernels.kernel_processes(hub, owner.actor, project)
    await stop_project(hub, project)
    assert not (await hub.runtime.status(project)).running
    # Asking again starts the project afresh, with no kernel left from before.
    assert await kernels.kernel_processes(hub, owner.actor, project) == []


@pytest.mark.usefixtures("sandboxed")
async def test_stopping_a_kernel_process(hub: Hub, owner: Person, project: str) -> None:
    await execute_in_project(hub, owner.actor, ExecuteCall("1", "python3", project_id=project))
    listed = await kernels.kernel_processes(hub, owner.actor, project)
    assert {"pid", "connectionFile", "kernel_name"} <= set(listed[0])
    pid = listed[0]["pid"]
    assert await kernels.stop_kernel_process(hub, owner.actor, project, pid)
    assert pid not in [k["pid"] for k in await kernels.kernel_processes(hub, owner.actor, project)]
    assert not await kernels.stop_kernel_process(hub, owner.actor, project, pid)
    with pytest.raises(Invalid):
        await kernels.stop_kernel_process(hub, owner.actor, project, "1")


@pytest.mark.usefixtures("sandboxed")
async def test_sessions_keep_state_between_executes(hub: Hub, owner: Person, project: str) -> None:
    made = await sessions.create_session(hub, owner.actor, project, "python3")
    session_id = made["session_id"]
    assert made["kernel"] == "python3" and made["project_id"] == project
    await sessions.execute_in_session(hub, owner.actor, project, session_id, "x = 1")
    out = await sessions.execute_in_session(hub, owner.actor, project, session_id, "x + 1")
    assert out == [{"data": {"text/plain": "2"}}]
    # The hub's execute with a session runs there too, uncached.
    call = ExecuteCall("x + 2", "", project_id=project, session=session_id)
    assert (await execute(hub, owner.actor, call)).output == [{"data": {"text/plain": "3"}}]
    listed = await sessions.list_sessions(hub, owner.actor, project)
    assert [s["session_id"] for s in listed] == [session_id]
    assert await sessions.delete_session(hub, owner.actor, project, session_id)
    with pytest.raises(NotFound):
        await sessions.execute_in_session(hub, owner.actor, project, session_id, "x")
    assert await sessions.list_sessions(hub, owner.actor, project) == []


@pytest.mark.usefixtures("sandboxed")
async def test_global_pool_is_off_by_default_and_capped_when_on(
    hub: Hub, owner: Person, stranger: Person, project: str
) -> None:
    call = ExecuteCall("2+3", "python3")
    with pytest.raises(Unavailable) as off:
        await execute(hub, stranger.actor, call)
    assert str(off.value) == "Jupyter API is not enabled on this server."
    await hub.site.set("jupyter_api_enabled", "yes")
    await hub.site.set("jupyter_project_id", project)
    try:
        out = await execute(hub, stranger.actor, replace(call, no_cache=True))
        assert out.output == [{"data": {"text/plain": "5"}}]
        specs = await kernels.kernel_specs(hub, Actor(account_id=None, ip="192.0.2.9"), None)
        assert "python3" in [s["name"] for s in specs]
        # Spend an anonymous caller's hour, then they are refused (cache hits stay free).
        anonymous = Actor(account_id=None, ip="192.0.2.9")
        key = cache.cache_key(None, "1", "python3", None, None)
        await global_pool.log_run(hub, anonymous, ExecuteCall("1", "python3"), key, 180.0)
        with pytest.raises(LimitExceeded) as capped:
            await execute(hub, anonymous, replace(call, no_cache=True))
        assert str(capped.value).startswith("You may use at most 180 seconds of compute time")
        assert (await execute(hub, anonymous, call)).cache_id is not None
    finally:
        await hub.site.set("jupyter_api_enabled", None)
        await hub.site.set("jupyter_project_id", None)


async def test_expired_results_are_forgotten(hub: Hub, owner: Person) -> None:
    now = owner.actor.now
    old, fresh = cache.cache_key(None, "old", "python3", None, None), "f" * 40
    await cache.store(hub.engine, old, [{"data": {"text/plain": "1"}}], now - 2 * cache.KEEP)
    await cache.store(hub.engine, fresh, [], now)
    await cache.forget_expired_results(hub)
    assert await cache.lookup(hub.engine, old, now) is None
    assert await cache.lookup(hub.engine, fresh, now) is not None
