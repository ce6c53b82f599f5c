"""Listing folders in a project: CoCalc's entries, hidden names, Node-style errors, the bound
on the size of a listing, and no way out of the project through links."""

from __future__ import annotations

from pathlib import Path

import pytest

from calchub.runtime import (
    MAX_LISTING_ENTRIES,
    DirectoryListing,
    FileFailure,
    LocalRuntime,
    ProjectSpec,
)
from tests.runtime.conftest import Projects, Shell

# 2021-01-02 03:04:05.678 UTC and 2022-06-07 08:09:10 UTC, in seconds.
OLDER = 1609556645.678
NEWER = 1654589350.0


def as_json(listing: DirectoryListing) -> list[dict[str, object]]:
    return [entry.to_json() for entry in listing.entries]


async def test_entries_sizes_times_and_order(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    await sh(
        project,
        "mkdir -p d/sub && printf 12345 > d/b.txt && : > d/a.txt && printf x > d/.hidden "
        "&& mkdir d/.git && touch -d @1609556645.678 d/b.txt d/sub "
        "&& touch -d @1654589350 d/a.txt d/.hidden d/.git",
    )
    listing = await runtime.list_directory(project, "d", hidden=False)
    assert as_json(listing) == [
        {"name": "a.txt", "size": 0, "mtime": NEWER},
        {"name": "b.txt", "size": 5, "mtime": OLDER},
        {"name": "sub", "isdir": True, "mtime": OLDER},
    ]
    assert listing.real_path == "d"
    everything = await runtime.list_directory(project, "d", hidden=True)
    assert [e.name for e in everything.entries] == [".git", ".hidden", "a.txt", "b.txt", "sub"]
    assert everything.entries[0].isdir and everything.entries[1].size == 1


async def test_home_and_path_forms(runtime: LocalRuntime, project: ProjectSpec, sh: Shell) -> None:
    await sh(project, "mkdir -p x/y && : > x/y/f")
    home = f"/projects/{project.project_id}"
    for path in ("", ".", "x/..", home, f"{home}/"):
        listing = await runtime.list_directory(project, path, hidden=False)
        assert listing.real_path == "", path
        assert "x" in [e.name for e in listing.entries], path
    for path in ("x/y", "x/y/", f"{home}/x/y", "x/./y", "x/y/../y"):
        listing = await runtime.list_directory(project, path, hidden=False)
        assert (listing.real_path, [e.name for e in listing.entries]) == ("x/y", ["f"]), path


async def test_outside_the_home_is_the_sandbox_view(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    """Absolute paths and '..' reach the sandbox's own read-only system folders, which the
    listing reports as outside the home; the host's /tmp and other projects are not there."""
    etc = await runtime.list_directory(project, "/etc", hidden=False)
    assert etc.real_path is None and "hostname" in [e.name for e in etc.entries]
    root = await runtime.list_directory(project, "../..", hidden=True)
    assert root.real_path is None
    assert {"etc", "usr", "projects", "tmp"} <= {e.name for e in root.entries}
    projects = await runtime.list_directory(project, "..", hidden=True)
    assert [e.name for e in projects.entries] == [project.project_id]
    tmp = await runtime.list_directory(project, "/tmp", hidden=True)
    assert all(not e.name.startswith("chp") for e in tmp.entries)


async def test_errors(runtime: LocalRuntime, project: ProjectSpec, sh: Shell) -> None:
    await sh(project, "echo hi > file.txt && mkdir locked && : > locked/x && chmod 000 locked")
    home = f"/projects/{project.project_id}"
    cases = {
        "missing": f"ENOENT: no such file or directory, scandir '{home}/missing'",
        "file.txt": f"ENOTDIR: not a directory, scandir '{home}/file.txt'",
        "file.txt/x": f"ENOTDIR: not a directory, scandir '{home}/file.txt/x'",
        "locked": f"EACCES: permission denied, scandir '{home}/locked'",
    }
    for path, message in cases.items():
        with pytest.raises(FileFailure) as info:
            await runtime.list_directory(project, path, hidden=False)
        assert str(info.value) == message, path


async def test_links(runtime: LocalRuntime, project: ProjectSpec, sh: Shell) -> None:
    await sh(
        project,
        "mkdir -p d real/inner && printf abc > real/f && cd d && ln -s ../real to_dir "
        "&& ln -s ../real/f to_file && ln -s nowhere broken && ln -s /etc to_etc",
    )
    entries = {e.name: e for e in (await runtime.list_directory(project, "d", False)).entries}
    assert entries["to_dir"].isdir and entries["to_etc"].isdir
    # A link to a file (or nowhere) is listed with the link's own size.
    assert not entries["to_file"].isdir and entries["to_file"].size == len("../real/f")
    assert not entries["broken"].isdir and entries["broken"].size == len("nowhere")
    through = await runtime.list_directory(project, "d/to_dir", hidden=False)
    assert through.real_path == "real"
    assert [e.name for e in through.entries] == ["f", "inner"]
    etc = await runtime.list_directory(project, "d/to_etc", hidden=False)
    assert etc.real_path is None
    with pytest.raises(FileFailure) as info:
        await runtime.list_directory(project, "d/to_file", hidden=False)
    assert info.value.code == "ENOTDIR"


async def test_links_cannot_leave_the_project(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    a, b = projects.spec(runtime), projects.spec(runtime)
    await runtime.write_file(b, "secret.txt", b"b's secret")
    b_host = runtime.projects_root / b.project_id
    await runtime.start(a)
    links = {
        "to_b": f"/projects/{b.project_id}",
        "to_b_host": str(b_host),
        "to_root_host": str(runtime.projects_root),
    }
    await sh(a, "; ".join(f"ln -s {target} {name}" for name, target in links.items()))
    for name in links:
        with pytest.raises(FileFailure) as info:
            await runtime.list_directory(a, name, hidden=True)
        assert info.value.code == "ENOENT", name
    for path in (f"/projects/{b.project_id}", str(b_host), str(runtime.projects_root)):
        with pytest.raises(FileFailure):
            await runtime.list_directory(a, path, hidden=True)


async def test_names_that_are_not_utf8(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    await sh(project, "mkdir n && : > \"n/caf$(printf '\\351')\" && : > n/ok.txt")
    listing = await runtime.list_directory(project, "n", hidden=False)
    assert [e.name for e in listing.entries] == ["caf\ufffd", "ok.txt"]


async def test_size_bound(runtime: LocalRuntime, project: ProjectSpec, sh: Shell) -> None:
    await sh(project, "mkdir many && cd many && touch f{01..15} .h{01..10}")
    home = f"/projects/{project.project_id}"
    listing = await runtime.list_directory(project, "many", hidden=True, max_entries=25)
    assert len(listing.entries) == 25
    # Hidden names count towards the bound even when they are not listed.
    with pytest.raises(FileFailure) as info:
        await runtime.list_directory(project, "many", hidden=False, max_entries=24)
    assert str(info.value) == (f"E2BIG: folder has more than 24 entries, scandir '{home}/many'")
    with pytest.raises(ValueError, match="negative"):
        await runtime.list_directory(project, "many", hidden=False, max_entries=-1)


async def test_default_size_bound(runtime: LocalRuntime, project: ProjectSpec, sh: Shell) -> None:
    done = await sh(
        project,
        f"mkdir big && cd big && seq 1 {MAX_LISTING_ENTRIES} | xargs touch && echo ok",
        timeout=120,
    )
    assert done.stdout == "ok\n", done.stderr
    listing = await runtime.list_directory(project, "big", hidden=False)
    assert len(listing.entries) == MAX_LISTING_ENTRIES
    await sh(project, "touch big/one-more")
    with pytest.raises(FileFailure) as info:
        await runtime.list_directory(project, "big", hidden=False)
    assert info.value.code == "E2BIG"
    assert f"more than {MAX_LISTING_ENTRIES} entries" in str(info.value)


async def test_unsandboxed_listing(roots: tuple[Path, Path], projects: Projects) -> None:
    rt = LocalRuntime(*roots, sandbox=False)
    spec = projects.spec(rt)
    try:
        await rt.write_file(spec, "d/f.txt", b"abc")
        home = await rt.list_directory(spec, "", hidden=False)
        assert home.real_path == "" and [e.name for e in home.entries] == ["d"]
        inner = await rt.list_directory(spec, "d", hidden=False)
        assert inner.real_path == "d" and [e.to_json()["size"] for e in inner.entries] == [3]
    finally:
        await rt.stop(spec.project_id)
        await rt.close()
