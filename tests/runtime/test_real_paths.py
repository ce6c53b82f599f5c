"""Where a read or a copy really lands once links are resolved: reported from the opened file
itself, so that public paths can be checked where they lead, and a copy of an approved place
that reads exactly there even when a link changes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from calchub.runtime import (
    FileContents,
    FileFailure,
    LocalRuntime,
    PathRefused,
    ProjectSpec,
    RuntimeFailure,
)
from calchub.runtime import copy as copying
from calchub.runtime.agent.copies import pin_source
from calchub.runtime.agent.files import FsError
from calchub.runtime.agent.realpaths import copied_from, real_path_of
from tests.runtime.conftest import Projects, Shell

SECRET = "TOP-SECRET-7f3a"
MB = 1024 * 1024

# pub/ holds links of every kind; private/ and private.txt are not public; other/ is.
LAYOUT = (
    f"mkdir -p pub/sub private other && echo '{SECRET}' > private.txt "
    f"&& echo '{SECRET} in a folder' > private/secret.txt && echo plain > pub/a.txt "
    "&& echo elsewhere > other/x.txt && echo linked > one.txt "
    "&& ln -s ../private.txt pub/to_secret && ln -s ../private pub/to_private "
    "&& ln -s ../one.txt pub/to_one && ln -s ../other pub/to_other "
    "&& ln -s /etc/hostname pub/to_host && ln -s to_hop pub/to_chain "
    "&& ln -s sub/hop pub/to_hop && ln -s ../../private.txt pub/sub/hop "
    "&& ln -s a.txt pub/to_a && ln -s to_a pub/to_to_a "
    "&& ln -s ../../private pub/sub/deep && head -c 3000000 /dev/zero > private/big.bin"
)


@pytest.fixture
async def linked(runtime: LocalRuntime, project: ProjectSpec, sh: Shell) -> ProjectSpec:
    result = await sh(project, LAYOUT)
    assert result.exit_code == 0, result.stderr
    return project


async def test_reads_report_where_the_file_really_is(
    runtime: LocalRuntime, linked: ProjectSpec
) -> None:
    home = f"/projects/{linked.project_id}"
    expected = {
        "pub/a.txt": "pub/a.txt",
        f"{home}/pub/a.txt": "pub/a.txt",
        "pub/../private.txt": "private.txt",
        "pub/to_secret": "private.txt",
        "pub/to_private/secret.txt": "private/secret.txt",
        "pub/sub/deep/secret.txt": "private/secret.txt",
        "pub/to_chain": "private.txt",  # three links in a row
        "pub/to_to_a": "pub/a.txt",
        "pub/to_one": "one.txt",
        "pub/to_other/x.txt": "other/x.txt",
        "pub/to_host": None,  # outside the home
        "/etc/hostname": None,
    }
    for path, real in expected.items():
        contents = await runtime.read_file_located(linked, path, MB)
        assert isinstance(contents, FileContents)
        assert contents.real_path == real, path
    # The bytes are what was read; deciding what to show is the caller's business.
    located = await runtime.read_file_located(linked, "pub/to_secret", MB)
    assert located.data == f"{SECRET}\n".encode()


async def test_plain_reads_are_unchanged(runtime: LocalRuntime, linked: ProjectSpec) -> None:
    """Members read through links as before."""
    assert await runtime.read_file(linked, "pub/to_secret", MB) == f"{SECRET}\n".encode()
    assert await runtime.read_file(linked, "pub/to_private/secret.txt", MB) == (
        f"{SECRET} in a folder\n".encode()
    )


async def test_failures_after_the_open_say_where(
    runtime: LocalRuntime, linked: ProjectSpec
) -> None:
    with pytest.raises(FileFailure) as info:
        await runtime.read_file_located(linked, "pub/to_private", MB)
    assert (info.value.code, info.value.opened, info.value.real_path) == ("EISDIR", True, "private")
    with pytest.raises(FileFailure) as info:
        await runtime.read_file_located(linked, "pub/to_private/big.bin", MB)
    failure = info.value
    assert (failure.code, failure.opened, failure.real_path) == ("EFBIG", True, "private/big.bin")
    with pytest.raises(FileFailure) as info:
        await runtime.read_file_located(linked, "pub/to_private/missing", MB)
    assert (info.value.code, info.value.opened, info.value.real_path) == ("ENOENT", False, None)


async def test_a_file_deleted_while_open_has_no_place(tmp_path: Path) -> None:
    path = tmp_path / "gone.txt"
    path.write_text("x")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert real_path_of(fd) == str(path)
        path.unlink()
        assert real_path_of(fd) is None
    finally:
        os.close(fd)


def test_where_a_copy_reads(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f.txt").write_text("f")
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "real" / "flink").symlink_to("/etc/hostname")
    base = str(tmp_path)
    assert copied_from(f"{base}/link", is_dir=True) == f"{base}/real"
    assert copied_from(f"{base}/link/f.txt", is_dir=False) == f"{base}/real/f.txt"
    # A link that is copied as a link keeps its own name.
    assert copied_from(f"{base}/link/flink", is_dir=False) == f"{base}/real/flink"
    assert copied_from(f"{base}/nope/f.txt", is_dir=False) is None


def test_a_pinned_source_refuses_links_on_the_way(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    base = str(tmp_path)
    fd, source = pin_source(f"{base}/real/")
    os.close(fd)
    assert source == "./"
    fd, source = pin_source(f"{base}/real/f.txt")
    os.close(fd)
    assert source == "./f.txt"
    for swapped in (f"{base}/link/", f"{base}/link/f.txt"):
        with pytest.raises(FsError) as info:
            pin_source(swapped)
        assert info.value.info["code"] == "ESTALE", swapped


async def _copy(
    runtime: LocalRuntime,
    src: ProjectSpec,
    src_path: str,
    dst: ProjectSpec,
    dst_path: str,
    allowed: Callable[[str], bool],
) -> None:
    await runtime.copy_path(
        src,
        src_path,
        dst,
        dst_path,
        overwrite_newer=False,
        delete_missing=False,
        backup=False,
        exclude=[],
        timeout_s=None,
        source_allowed=allowed,
    )


def _public(real: str) -> bool:
    return real in ("pub", "other", "one.txt") or real.startswith(("pub/", "other/"))


async def _everything(runtime: LocalRuntime, spec: ProjectSpec, sh: Shell) -> str:
    """Every name and every readable byte in the project, links followed."""
    result = await sh(spec, "find -L . 2>/dev/null; find -L . -type f -exec cat {} + 2>/dev/null")
    return result.stdout


async def test_copies_are_checked_where_they_really_read(
    runtime: LocalRuntime, projects: Projects, linked: ProjectSpec, sh: Shell
) -> None:
    dst = projects.spec(runtime)
    await runtime.start(dst)
    asked: list[str] = []

    def allowed(real: str) -> bool:
        asked.append(real)
        return _public(real)

    for path in ("pub/to_private", "pub/to_private/", "pub/to_private/secret.txt", "pub/sub/deep"):
        with pytest.raises(PathRefused):
            await _copy(runtime, linked, path, dst, "stolen", allowed)
    assert asked == ["private", "private", "private/secret.txt", "private"]
    # A link out of the home as the source folder is refused without asking.
    await sh(linked, "ln -s /etc pub/to_etc")
    with pytest.raises(PathRefused):
        await _copy(runtime, linked, "pub/to_etc/", dst, "stolen", allowed)
    assert len(asked) == 4
    assert SECRET not in await _everything(runtime, dst, sh)
    assert (await sh(dst, "ls -A")).stdout == ""


async def test_allowed_copies_keep_links_as_links(
    runtime: LocalRuntime, projects: Projects, linked: ProjectSpec, sh: Shell
) -> None:
    dst = projects.spec(runtime)
    await runtime.start(dst)
    await _copy(runtime, linked, "pub", dst, "whole", _public)
    await _copy(runtime, linked, "pub/to_secret", dst, "one_link", _public)
    await _copy(runtime, linked, "pub/to_other", dst, "via_link", _public)  # another public path
    await _copy(runtime, linked, "pub/to_one", dst, "as_link", _public)
    target = runtime.projects_root / dst.project_id
    assert os.readlink(target / "whole" / "to_secret") == "../private.txt"
    assert os.readlink(target / "whole" / "to_private") == "../private"
    assert os.readlink(target / "one_link") == "../private.txt"
    assert (target / "via_link" / "x.txt").read_text() == "elsewhere\n"
    assert os.readlink(target / "as_link") == "../one.txt"
    assert SECRET not in await _everything(runtime, dst, sh)


async def test_a_pinned_copy_fails_when_a_link_appeared(
    runtime: LocalRuntime, projects: Projects, linked: ProjectSpec
) -> None:
    """The sender checks the approved place itself: a folder swapped for a link after the
    check is not followed."""
    dst = projects.spec(runtime)
    await runtime.start(dst)
    home = f"/projects/{linked.project_id}"
    plan = copying.CopyPlan(
        src_socket=str(runtime.runtime_root / linked.project_id / "sock"),
        dst_socket=str(runtime.runtime_root / dst.project_id / "sock"),
        src_arg=f"{home}/pub/to_private/",
        dst_arg=f"/projects/{dst.project_id}/stolen/",
        mkdir=f"/projects/{dst.project_id}/stolen",
        flags=copying.rsync_flags(
            overwrite_newer=False, delete_missing=False, backup=False, exclude=[], timeout_s=None
        ),
        pinned=True,
    )
    with pytest.raises(RuntimeFailure) as info:
        await asyncio.to_thread(copying.run, plan)
    assert "the source changed while it was copied" in str(info.value)
    assert list((runtime.projects_root / dst.project_id / "stolen").iterdir()) == []
