"""Reading a stopped project without starting it: a one-shot reader sandbox that sees only
the project's home, read-only, and leaves nothing behind; it never overlaps a start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from calchub.runtime import Busy, FileFailure, LocalRuntime, ProjectSpec
from calchub.runtime import local as local
from calchub.runtime.mounts import is_mount_point
from tests.runtime.conftest import Projects, Shell, zombies_of


async def _stopped(
    runtime: LocalRuntime, projects: Projects, sh: Shell, script: str
) -> ProjectSpec:
    spec = projects.spec(runtime)
    await runtime.start(spec)
    assert (await sh(spec, script)).exit_code == 0
    await runtime.stop(spec.project_id)
    return spec


def _no_traces(runtime: LocalRuntime, project_id: str, uid: int) -> None:
    # The reader's sandbox ended and was reaped (its monitor's parent is this hub, and a
    # subreaper inherits a reader that outlives its monitor).
    assert zombies_of(uid) == []
    assert not is_mount_point(runtime.runtime_root / ".homes" / project_id)
    assert not (runtime.runtime_root / ".homes" / project_id).exists()
    assert not (runtime.runtime_root / project_id).exists()


async def test_read_and_list_a_stopped_project(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    spec = await _stopped(
        runtime, projects, sh, "mkdir -p d && printf hello > d/a.txt && ln -s d/a.txt link"
    )
    contents = await runtime.peek_file(spec, "d/a.txt", 100)
    assert (contents.data, contents.real_path) == (b"hello", "d/a.txt")
    assert (await runtime.peek_file(spec, "link", 100)).real_path == "d/a.txt"
    listing = await runtime.peek_directory(spec, "", hidden=False)
    assert [entry.name for entry in listing.entries] == ["d", "link"]
    assert listing.real_path == ""
    assert not (await runtime.status(spec.project_id)).running
    _no_traces(runtime, spec.project_id, spec.uid)


async def test_errors_caps_and_no_way_out(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    other = await _stopped(runtime, projects, sh, "printf theirs > mine.txt")
    spec = await _stopped(
        runtime,
        projects,
        sh,
        f"head -c 5000 /dev/zero > big && mkdir d "
        f"&& ln -s /projects/{other.project_id}/mine.txt theirs && ln -s /etc/hostname host",
    )
    with pytest.raises(FileFailure) as missing:
        await runtime.peek_file(spec, "nope", 100)
    assert str(missing.value) == (
        f"ENOENT: no such file or directory, open '/projects/{spec.project_id}/nope'"
    )
    with pytest.raises(FileFailure) as big:
        await runtime.peek_file(spec, "big", 4999)
    assert (big.value.code, big.value.size, big.value.real_path) == ("EFBIG", 5000, "big")
    with pytest.raises(FileFailure) as folder:
        await runtime.peek_file(spec, "d", 100)
    assert folder.value.code == "EISDIR"
    with pytest.raises(FileFailure) as not_folder:
        await runtime.peek_directory(spec, "big", hidden=False)
    assert not_folder.value.code == "ENOTDIR"
    # Another project's home does not exist in here; what is outside the home is not in it.
    with pytest.raises(FileFailure) as theirs:
        await runtime.peek_file(spec, "theirs", 100)
    assert theirs.value.code == "ENOENT"
    assert (await runtime.peek_file(spec, "host", 1000)).real_path is None
    _no_traces(runtime, spec.project_id, spec.uid)


async def test_reads_never_overlap_a_start(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    spec = await _stopped(runtime, projects, sh, "printf x > f")
    reads = [runtime.peek_file(spec, "f", 10) for _ in range(3)]
    results = await asyncio.gather(*reads[:2], runtime.start(spec), reads[2])
    assert [r.data for r in results if r is not None] == [b"x", b"x", b"x"]
    assert (await runtime.status(spec.project_id)).running
    # Its home is still mounted for the running sandbox, and it is read by its agent.
    assert is_mount_point(runtime.runtime_root / ".homes" / spec.project_id)
    await sh(spec, "printf y > f")
    assert (await runtime.peek_file(spec, "f", 10)).data == b"y"


async def test_too_many_waiting_reads_are_refused(
    roots: tuple[Path, Path],
    projects: Projects,
    sh: Shell,
    runtime: LocalRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = await _stopped(runtime, projects, sh, "printf x > f")
    monkeypatch.setattr(local, "READERS_WAITING", 0)
    capped = LocalRuntime(*roots)
    try:
        results = await asyncio.gather(
            *(capped.peek_file(spec, "f", 10) for _ in range(local.READERS_AT_ONCE + 2)),
            return_exceptions=True,
        )
    finally:
        await capped.close()
    refused = [r for r in results if isinstance(r, Busy)]
    assert len(refused) == 2
    assert all(getattr(r, "data", None) == b"x" for r in results if r not in refused)
    _no_traces(runtime, spec.project_id, spec.uid)
