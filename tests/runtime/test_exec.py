"""Running commands in a project: arguments, bash mode, exit codes, working directories,
timeouts that kill whole process trees, output limits and concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from calchub.runtime import ExecRequest, ExecWatch, LocalRuntime, ProjectSpec, Quota
from tests.runtime.conftest import Projects, Shell, processes_of


def request(command: str, *args: str, **kw: object) -> ExecRequest:
    options: dict[str, object] = {"path": "", "timeout_s": 20.0, "max_output": None, "bash": False}
    options.update(kw)
    return ExecRequest(command, list(args), **options)  # type: ignore[arg-type]


async def test_pwd_is_the_home(runtime: LocalRuntime, project: ProjectSpec) -> None:
    result = await runtime.exec(project, request("pwd"))
    assert result.stdout == f"/projects/{project.project_id}\n"
    assert (result.exit_code, result.timed_out, result.could_not_run) == (0, False, False)
    assert result.script_path is None


async def test_args_are_passed_without_a_shell(runtime: LocalRuntime, project: ProjectSpec) -> None:
    result = await runtime.exec(project, request("printf", "%s|", "a b", "$HOME", "*"))
    assert result.stdout == "a b|$HOME|*|"


async def test_bash_mode_runs_a_script_with_a_cpu_limit(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    result = await runtime.exec(
        project, request("x=$((6*7)); echo $x; ulimit -t", bash=True, timeout_s=7.5)
    )
    assert result.stdout == "42\n8\n"
    assert result.script_path is not None and result.script_path.startswith("/tmp/")


async def test_exit_codes_and_stderr(sh: Shell, project: ProjectSpec) -> None:
    result = await sh(project, "echo out; echo err >&2; exit 3")
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 3)
    assert not result.could_not_run


async def test_a_signal_death_is_128_plus_the_signal(sh: Shell, project: ProjectSpec) -> None:
    assert (await sh(project, "kill -TERM $$")).exit_code == 143


async def test_a_missing_command_could_not_run(runtime: LocalRuntime, project: ProjectSpec) -> None:
    result = await runtime.exec(project, request("no-such-command", "x"))
    assert result.could_not_run
    assert result.exit_code == 127
    assert "no-such-command" in result.stderr


async def test_a_file_that_is_not_executable_could_not_run(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    await sh(project, "echo hi > plain.txt")
    result = await runtime.exec(project, request("./plain.txt"))
    assert result.could_not_run and result.exit_code == 126


async def test_a_missing_working_directory_could_not_run(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    result = await runtime.exec(project, request("pwd", path="nowhere"))
    assert result.could_not_run
    assert "nowhere" in result.stderr


async def test_relative_and_absolute_working_directories(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    await sh(project, "mkdir -p sub/dir")
    relative = await runtime.exec(project, request("pwd", path="sub/dir"))
    assert relative.stdout == f"/projects/{project.project_id}/sub/dir\n"
    absolute = await runtime.exec(project, request("pwd", path="/etc"))
    assert absolute.stdout == "/etc\n"


async def test_environment(runtime: LocalRuntime, project: ProjectSpec) -> None:
    result = await runtime.exec(
        project,
        request("echo $HOME $COCALC_PROJECT_ID $EXTRA; id -u", bash=True, env={"EXTRA": "yes"}),
    )
    home = f"/projects/{project.project_id}"
    assert result.stdout == f"{home} {project.project_id} yes\n{project.uid}\n"


async def test_timeout_kills_the_whole_tree(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    script = (
        "sleep 1001 & setsid sleep 1001 & (sleep 1001 &) ; "
        "nohup sleep 1001 >/dev/null 2>&1 & echo started; sleep 1001"
    )
    started = time.monotonic()
    result = await sh(project, script, timeout=1.5)
    assert time.monotonic() - started < 10
    assert result.timed_out
    assert result.exit_code == 137
    assert result.stdout == "started\n"
    assert result.script_path is not None
    assert not [p for p in processes_of(project.uid) if "sleep 1001" in p]


async def test_timeout_in_the_subreaper_fallback(
    roots: tuple[Path, Path], projects: Projects
) -> None:
    rt = LocalRuntime(*roots, nested_pidns=False)
    spec = projects.spec(rt)
    try:
        script = "sleep 1002 & setsid sleep 1002 & (setsid sleep 1002 &); echo started; sleep 1002"
        result = await rt.exec(spec, request(script, bash=True, timeout_s=1.5))
        assert result.timed_out and result.stdout == "started\n"
        assert not [p for p in processes_of(spec.uid) if "sleep 1002" in p]
        # Without nested PID namespaces the sandbox does not allow user namespaces at all.
        nested = await rt.exec(spec, request("unshare -U true", bash=True))
        assert nested.exit_code != 0
    finally:
        await rt.stop(spec.project_id)
        await rt.close()


async def test_background_jobs_that_let_go_of_the_output_survive(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    spec = projects.spec(runtime)
    result = await sh(spec, "nohup sleep 1003 >/dev/null 2>&1 & echo ok", timeout=5)
    assert result.stdout == "ok\n" and not result.timed_out
    await asyncio.sleep(0.2)
    assert [p for p in processes_of(spec.uid) if "sleep 1003" in p]
    await runtime.stop(spec.project_id)
    assert processes_of(spec.uid) == []


async def test_output_bomb_is_bounded(runtime: LocalRuntime, project: ProjectSpec) -> None:
    started = time.monotonic()
    result = await runtime.exec(project, request("yes", timeout_s=2, max_output=1000))
    assert time.monotonic() - started < 6
    assert result.timed_out
    assert result.stdout == "y\n" * 500
    assert result.stdout_truncated and not result.stderr_truncated


async def test_output_truncation_is_reported(sh: Shell, project: ProjectSpec) -> None:
    result = await sh(project, "printf abcdef; printf xy >&2", max_output=3)
    assert (result.stdout, result.stdout_truncated) == ("abc", True)
    assert (result.stderr, result.stderr_truncated) == ("xy", False)
    exact = await sh(project, "printf abc", max_output=3)
    assert (exact.stdout, exact.stdout_truncated) == ("abc", False)


async def test_output_without_a_limit_has_a_hard_cap(sh: Shell, project: ProjectSpec) -> None:
    result = await sh(project, "head -c 30000000 /dev/zero | tr '\\0' a")
    assert result.exit_code == 0
    assert len(result.stdout) == 10 * 1024 * 1024
    assert result.stdout_truncated


async def test_output_is_decoded_as_utf8(sh: Shell, project: ProjectSpec) -> None:
    result = await sh(project, "printf 'h\\xc3\\xa9 \\xff'", max_output=3)
    assert result.stdout == "hé "
    assert result.stdout_truncated


async def test_64_concurrent_execs(runtime: LocalRuntime, projects: Projects) -> None:
    # Each exec of a burst may hold four of the project's processes at once (its worker, the
    # helper that forks its init, the init, the command): 64 of them come close to the
    # default 256, and on a busy machine, where ended helpers and workers are reaped late, an
    # exec would then be refused as the quota says. The quota here leaves room for the burst.
    project = projects.spec(runtime, Quota(processes=512))
    await runtime.start(project)
    results = await asyncio.gather(
        *(
            runtime.exec(project, request("sh", "-c", 'echo "$0"; exec sleep 0.5', str(i)))
            for i in range(64)
        )
    )
    assert [(r.stdout, r.stderr) for r in results] == [(f"{i}\n", "") for i in range(64)]
    assert all(r.exit_code == 0 for r in results)
    # The workers the burst needed retire again.
    deadline = time.monotonic() + 10
    while len(processes_of(project.uid)) > 20:
        assert time.monotonic() < deadline, processes_of(project.uid)
        await asyncio.sleep(0.2)


async def test_a_quiet_project_rests_as_a_single_process_and_wakes_on_the_next_request(
    roots: tuple[Path, Path], projects: Projects
) -> None:
    runtime = LocalRuntime(*roots, quiet_after_s=0)
    spec = projects.spec(runtime)
    try:
        await runtime.start(spec)
        for _ in range(3):
            burst = [runtime.exec(spec, request("sleep", "0.3")) for _ in range(8)]
            assert all(r.exit_code == 0 for r in await asyncio.gather(*burst))
            # the agent at rest, a fresh interpreter, is the project's only process: its
            # workers and their exec inits have ended, and bubblewrap's monitor went at start
            assert await _resting(spec.uid, below=0) == []
            # a request wakes it (the same process) and is served
            assert (await runtime.exec(spec, request("echo", "hi"))).stdout == "hi\n"
        # what a command leaves in the background lives on, below its exec init, while the
        # agent rests
        await runtime.exec(spec, request("sh", "-c", "sleep 60 >/dev/null 2>&1 &"))
        assert "sleep 60" in await _resting(spec.uid, below=2)
        assert (await runtime.list_directory(spec, "", False)).entries is not None
    finally:
        await runtime.stop(spec.project_id)
        await runtime.close()
    assert processes_of(spec.uid) == []


async def _resting(uid: int, below: int) -> list[str]:
    """Once the project's agent (the top of its processes) rests, with `below` processes
    left below it: their command lines."""
    deadline = time.monotonic() + 10
    while (found := _rest_and_below(uid)) is None or len(found) != below:
        assert time.monotonic() < deadline, processes_of(uid)
        await asyncio.sleep(0.1)
    return found


def _rest_and_below(uid: int) -> list[str] | None:
    """The command lines of the processes below the agent when it rests, else None."""
    found = {}  # pid -> (parent, command line)
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        with contextlib.suppress(OSError, ValueError, KeyError):
            status = Path(f"/proc/{pid}/status").read_text()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid and "Z" not in fields["State"]:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                found[pid] = (int(fields["PPid"]), command.decode().strip())
    top = [pid for pid, (parent, _) in found.items() if parent not in found]
    if len(top) != 1 or "rest_main" not in found[top[0]][1]:
        return None
    return [command for pid, (_, command) in found.items() if pid != top[0]]


async def test_timeout_must_be_positive(runtime: LocalRuntime, project: ProjectSpec) -> None:
    with pytest.raises(ValueError):
        await runtime.exec(project, request("true", timeout_s=0))


async def test_output_beyond_what_the_pipes_hold_arrives_whole(
    sh: Shell, project: ProjectSpec
) -> None:
    # Written at once by a command that ends at once: more than the pipes hold while the
    # worker waits for the command's end before reading.
    result = await sh(
        project,
        "head -c 3000000 /dev/zero | tr '\\0' a; head -c 1000000 /dev/zero | tr '\\0' b >&2",
    )
    assert result.exit_code == 0
    assert result.stdout == "a" * 3_000_000
    assert result.stderr == "b" * 1_000_000
    assert not (result.stdout_truncated or result.stderr_truncated)


async def _until(check: Callable[[], bool]) -> None:
    """Wait until `check` holds (what a watched exec reports arrives as the command runs)."""
    async with asyncio.timeout(30):
        while True:
            if check():
                return
            await asyncio.sleep(0.02)


async def test_a_watched_exec_tells_its_start_output_and_use_as_it_runs(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    watch = ExecWatch(1000)
    script = "echo first; echo oops >&2; while [ ! -e go ]; do sleep 0.02; done; echo second"
    running = asyncio.ensure_future(runtime.exec(project, request(script, bash=True), watch))
    try:
        await asyncio.wait_for(watch.started.wait(), 30)
        assert isinstance(watch.pid, int) and watch.pid > 0
        await _until(lambda: (watch.stdout(), watch.stderr()) == ("first\n", "oops\n"))
        # The first sample of its processes comes a second after its start.
        await _until(lambda: len(watch.samples) > 0)
        sample = watch.samples[0]
        assert set(sample) == {"timestamp", "mem_rss", "cpu_pct", "cpu_secs"}
        assert sample["mem_rss"] > 0 and sample["timestamp"] > time.time() * 1000 - 60_000
        assert not running.done()
        await runtime.write_file(project, "go", b"")
        result = await running
    finally:
        running.cancel()
    assert (result.stdout, result.stderr, result.exit_code) == ("first\nsecond\n", "oops\n", 0)


async def test_a_watched_exec_keeps_to_its_output_limit(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    watch = ExecWatch(1000)
    result = await runtime.exec(
        project, request("yes | head -c 50000000", bash=True, max_output=1000), watch
    )
    assert result.stdout_truncated and len(result.stdout) == 1000
    assert len(watch.stdout()) <= 1001


async def test_a_watched_exec_ends_when_its_watcher_goes(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    watch = ExecWatch(100)
    running = asyncio.ensure_future(
        runtime.exec(project, request("echo up; sleep 1004", bash=True), watch)
    )
    await _until(lambda: watch.stdout() == "up\n")
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    await _until(lambda: not [p for p in processes_of(project.uid) if "sleep 1004" in p])
