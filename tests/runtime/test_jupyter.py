"""Jupyter kernels inside real sandboxes: CoCalc's output format, limits, pools, sessions."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from calchub.runtime import LocalRuntime, ProjectSpec, Quota
from calchub.runtime import jupyter as kernels
from calchub.runtime.base import JupyterFailure

from .conftest import Projects, processes_of

QUICK = kernels.ExecuteLimits(timeout_ms=60_000, timeout_ms_per_cell=30_000)


@pytest_asyncio.fixture(scope="module")
async def project(runtime: LocalRuntime) -> AsyncIterator[ProjectSpec]:
    made = Projects()
    spec = made.spec(runtime)
    await runtime.start(spec)
    yield spec
    await made.stop_all()


def ends_interrupted(out: list[dict[str, object]]) -> bool:
    """An interrupted Python cell ends with a KeyboardInterrupt error, or, when a second
    interrupt caught IPython formatting that error (a busy machine), with its stderr note."""
    last = out[-1]
    return last.get("ename") == "KeyboardInterrupt" or "KeyboardInterrupt" in str(
        last.get("text") if last.get("name") == "stderr" else ""
    )


async def run(
    runtime: LocalRuntime, spec: ProjectSpec, code: str, **options: object
) -> list[dict[str, object]]:
    options.setdefault("limits", QUICK)
    options.setdefault("pool", kernels.PoolSettings(size=1))
    request = kernels.ExecuteRequest(kernel="python3", input=code, **options)  # type: ignore[arg-type]
    return await kernels.execute(runtime, spec, request)


async def test_python3_is_listed_with_cocalcs_fields(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    specs = await kernels.kernel_specs(runtime, project)
    python = next(s for s in specs if s["name"] == "python3")
    assert set(python) == {
        "name", "display_name", "language", "interrupt_mode", "env", "metadata",
        "resource_dir", "argv",
    }  # fmt: skip
    assert python["language"] == "python"
    names = [str(s["display_name"]) for s in specs]
    assert names == sorted(names, key=str.lower)


async def test_execute_result(runtime: LocalRuntime, project: ProjectSpec) -> None:
    assert await run(runtime, project, "sum(range(100))") == [{"data": {"text/plain": "4950"}}]


async def test_history_is_replayed_silently(runtime: LocalRuntime, project: ProjectSpec) -> None:
    history = ["print('not shown')", "a = sum(range(101))"]
    out = await run(runtime, project, "a", history=history)
    assert out == [{"data": {"text/plain": "5050"}}]


async def test_each_stateless_execute_starts_clean(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    await run(runtime, project, "leftover = 1")
    out = await run(runtime, project, "leftover")
    assert out[-1]["ename"] == "NameError"


async def test_streams_keep_their_order(runtime: LocalRuntime, project: ProjectSpec) -> None:
    code = (
        "import sys\n"
        "print('one', flush=True)\n"
        "print('two', file=sys.stderr, flush=True)\n"
        "print('three', flush=True)"
    )
    out = await run(runtime, project, code)
    assert out == [
        {"name": "stdout", "text": "one\n"},
        {"name": "stderr", "text": "two\n"},
        {"name": "stdout", "text": "three\n"},
    ]


async def test_error_has_name_value_and_traceback(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    out = await run(runtime, project, "print('before')\n1/0")
    assert out[0] == {"name": "stdout", "text": "before\n"}
    error = out[1]
    assert set(error) == {"ename", "evalue", "traceback"}
    assert (error["ename"], error["evalue"]) == ("ZeroDivisionError", "division by zero")
    assert isinstance(error["traceback"], list)
    assert any("ZeroDivisionError" in line for line in error["traceback"])


async def test_display_data_keeps_every_mime_type(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    code = (
        "from IPython.display import display\n"
        "display({'text/html': '<b>hi</b>', 'text/markdown': '**hi**', 'text/plain': 'hi'},"
        " raw=True, metadata={'text/html': {'isolated': True}})"
    )
    out = await run(runtime, project, code)
    assert out == [
        {
            "data": {"text/html": "<b>hi</b>", "text/markdown": "**hi**", "text/plain": "hi"},
            "metadata": {"text/html": {"isolated": True}},
        }
    ]


async def test_matplotlib_figure_is_a_base64_png(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    out = await run(runtime, project, code)
    figures = [item for item in out if "image/png" in item.get("data", {})]  # type: ignore[operator]
    assert len(figures) == 1
    data = figures[0]["data"]
    assert isinstance(data, dict)
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert data["text/plain"].startswith("<Figure size")


async def test_clear_output_empties_the_list(runtime: LocalRuntime, project: ProjectSpec) -> None:
    code = "from IPython.display import clear_output\nprint('gone')\nclear_output()\nprint('kept')"
    out = await run(runtime, project, code)
    assert out == [{"wait": False}, {"name": "stdout", "text": "kept\n"}]


async def test_path_is_the_working_directory(runtime: LocalRuntime, project: ProjectSpec) -> None:
    await runtime.write_file(project, "work dir/data.txt", b"42")
    out = await run(runtime, project, "open('data.txt').read()", path="work dir")
    assert out == [{"data": {"text/plain": "'42'"}}]
    out = await run(runtime, project, "1", path="no/such/folder")
    assert out[0]["name"] == "stderr"
    assert "FileNotFoundError" in str(out[0]["text"])
    assert out[1:] == [{"data": {"text/plain": "1"}}]


async def test_output_beyond_the_cell_limit_is_truncated(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    limits = kernels.ExecuteLimits(timeout_ms_per_cell=30_000, max_output_per_cell=2_000)
    code = "for i in range(200):\n    print('x' * 50, flush=True)\n1/0"
    out = await run(runtime, project, code, limits=limits)
    notice = {
        "name": "stdout",
        "output_type": "stream",
        "text": ["Output truncated since it exceeded the cell output limit of 2000 characters"],
    }
    assert notice in out
    assert out.count(notice) == 1
    assert out[-1]["ename"] == "ZeroDivisionError"  # tracebacks are always kept
    assert sum(len(str(item)) for item in out[:-1]) < 3_000


async def test_total_output_limit(runtime: LocalRuntime, project: ProjectSpec) -> None:
    limits = kernels.ExecuteLimits(timeout_ms_per_cell=30_000, max_output=500)
    out = await run(
        runtime, project, "for i in range(50):\n    print(i, flush=True)", limits=limits
    )
    assert out[-1]["text"] == [
        "Output truncated since it exceeded the global output limit of 500 characters"
    ]


async def test_a_cell_past_its_time_is_interrupted(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    limits = kernels.ExecuteLimits(timeout_ms_per_cell=1_000)
    out = await run(
        runtime, project, "print('start', flush=True)\nimport time\ntime.sleep(60)", limits=limits
    )
    assert out[0] == {"name": "stdout", "text": "start\n"}
    assert ends_interrupted(out)
    assert await run(runtime, project, "2+2") == [{"data": {"text/plain": "4"}}]


async def test_a_cell_that_ignores_interrupts_is_killed(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    limits = kernels.ExecuteLimits(timeout_ms_per_cell=500)
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"
    with pytest.raises(JupyterFailure) as caught:
        await run(runtime, project, code, limits=limits)
    assert caught.value.kind == "timeout"
    assert "timeout" in str(caught.value)
    assert await run(runtime, project, "2+2") == [{"data": {"text/plain": "4"}}]


async def test_unknown_kernel(runtime: LocalRuntime, project: ProjectSpec) -> None:
    request = kernels.ExecuteRequest(kernel="cobol42", input="1")
    with pytest.raises(JupyterFailure) as caught:
        await kernels.execute(runtime, project, request)
    assert caught.value.kind == "no_kernel"
    assert "cobol42" in str(caught.value)


async def test_sessions_keep_state(runtime: LocalRuntime, project: ProjectSpec) -> None:
    session = await kernels.create_session(runtime, project, "python3", None, 600)
    try:
        assert session.kernel == "python3" and session.alive
        await run(runtime, project, "x = 1", session=session.id)
        assert await run(runtime, project, "x + 1", session=session.id) == [
            {"data": {"text/plain": "2"}}
        ]
        assert await run(runtime, project, "import os; os.getcwd()", session=session.id) == [
            {"data": {"text/plain": repr(f"/projects/{project.project_id}")}}
        ]
        # An interrupted cell leaves the session's state in place.
        slow = kernels.ExecuteLimits(timeout_ms_per_cell=1_000)
        out = await run(
            runtime, project, "import time; time.sleep(60)", session=session.id, limits=slow
        )
        assert ends_interrupted(out)
        assert await run(runtime, project, "x", session=session.id) == [
            {"data": {"text/plain": "1"}}
        ]
        listed = await kernels.list_sessions(runtime, project)
        assert session.id in [s.id for s in listed]
        running = await kernels.list_kernels(runtime, project)
        assert any(k.session == session.id and k.pid == session.pid for k in running)
    finally:
        assert await kernels.delete_session(runtime, project, session.id)
    assert not await kernels.delete_session(runtime, project, session.id)
    with pytest.raises(JupyterFailure) as caught:
        await run(runtime, project, "x", session=session.id)
    assert caught.value.kind == "no_session"


async def test_a_cell_after_an_error_runs(runtime: LocalRuntime, project: ProjectSpec) -> None:
    # Each call is independent: an error must not cancel the call that follows it (a kernel
    # told to stop on errors aborts whatever reaches it right after one). The failing cell
    # keeps the kernel busy a moment after its reply, so the next call always arrives in
    # that window.
    session = await kernels.create_session(runtime, project, "python3", None, 600)
    busy_after_reply = "import asyncio, time; asyncio.get_event_loop().call_soon(time.sleep, 0.3)"
    try:
        for i in range(3):
            failed = await run(runtime, project, f"{busy_after_reply}; 1/0", session=session.id)
            assert failed[-1]["ename"] == "ZeroDivisionError"
            assert await run(runtime, project, f"{i}", session=session.id) == [
                {"data": {"text/plain": f"{i}"}}
            ]
    finally:
        await kernels.delete_session(runtime, project, session.id)


async def test_idle_sessions_end(runtime: LocalRuntime, project: ProjectSpec) -> None:
    session = await kernels.create_session(runtime, project, "python3", None, 0.1)
    for _ in range(100):
        if session.id not in [s.id for s in await kernels.list_sessions(runtime, project)]:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the idle session was not ended")
    assert session.pid not in [k.pid for k in await kernels.list_kernels(runtime, project)]


async def test_list_and_stop_kernels(runtime: LocalRuntime, project: ProjectSpec) -> None:
    # With a pool of two, a kernel is left after the execute took one.
    await run(runtime, project, "1", pool=kernels.PoolSettings(size=2))
    listed = await kernels.list_kernels(runtime, project)
    assert listed
    assert all(k.connection_file.endswith(".json") and k.kernel_name == "python3" for k in listed)
    victim = listed[0].pid
    assert await kernels.stop_kernel(runtime, project, victim)
    assert victim not in [k.pid for k in await kernels.list_kernels(runtime, project)]
    assert not await kernels.stop_kernel(runtime, project, victim)


async def test_runaway_memory_is_stopped_by_the_project_limit(
    runtime: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(runtime, Quota(memory_mb=400))
    code = "hog = 'x' * (2000 * 1024 * 1024)"
    try:
        out = await run(runtime, spec, code)
    except JupyterFailure as exc:
        assert exc.kind == "died"
        assert "ran out of memory" in str(exc)
    else:
        # Without a memory cgroup the limit is an address-space rlimit.
        assert out[-1]["ename"] == "MemoryError"
    assert await run(runtime, spec, "2+2") == [{"data": {"text/plain": "4"}}]


async def test_kernels_end_with_their_project(runtime: LocalRuntime, projects: Projects) -> None:
    spec = projects.spec(runtime)
    await run(runtime, spec, "1")
    assert any("ipykernel" in line for line in processes_of(spec.uid))
    await runtime.stop(spec.project_id)
    assert processes_of(spec.uid) == []
    # Started again on demand, with a fresh manager.
    assert await run(runtime, spec, "3*3") == [{"data": {"text/plain": "9"}}]
