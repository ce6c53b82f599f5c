"""Copying between projects: rsync semantics, options, quota, and no way for either side to
read or write outside what it owns."""

from __future__ import annotations

from pathlib import Path

import pytest

from calchub.runtime import (
    FileFailure,
    LocalRuntime,
    ProjectSpec,
    Quota,
    QuotaExceeded,
    RuntimeFailure,
)
from calchub.runtime.agent.copies import sender_argv
from tests.runtime.conftest import Projects, Shell


async def copy(
    runtime: LocalRuntime,
    src: ProjectSpec,
    src_path: str,
    dst: ProjectSpec,
    dst_path: str,
    **options: object,
) -> None:
    settings: dict[str, object] = {
        "overwrite_newer": False,
        "delete_missing": False,
        "backup": False,
        "exclude": [],
        "timeout_s": None,
    }
    settings.update(options)
    await runtime.copy_path(src, src_path, dst, dst_path, **settings)  # type: ignore[arg-type]


def tree(root: Path) -> dict[str, str]:
    """Relative path -> file content, or '-> target' for links, or '/' for folders."""
    found = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = f"-> {path.readlink()}"
        elif path.is_dir():
            found[name] = "/"
        else:
            found[name] = path.read_text()
    return found


@pytest.fixture
async def pair(runtime: LocalRuntime, projects: Projects) -> tuple[ProjectSpec, ProjectSpec]:
    src, dst = projects.spec(runtime), projects.spec(runtime)
    await runtime.write_file(src, "dir/a.txt", b"a")
    await runtime.write_file(src, "dir/sub/b.txt", b"b")
    await runtime.start(dst)
    return src, dst


def home(runtime: LocalRuntime, spec: ProjectSpec) -> Path:
    return runtime.projects_root / spec.project_id


async def test_folder_contents_go_into_the_target(
    runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec]
) -> None:
    src, dst = pair
    await copy(runtime, src, "dir/", dst, "copied")
    await copy(runtime, src, "dir", dst, "again/")
    expected = {"a.txt": "a", "sub": "/", "sub/b.txt": "b"}
    assert tree(home(runtime, dst) / "copied") == expected
    assert tree(home(runtime, dst) / "again") == expected
    assert (home(runtime, dst) / "copied" / "a.txt").stat().st_uid == dst.uid


async def test_a_file_goes_to_the_exact_path_or_into_a_folder(
    runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec]
) -> None:
    src, dst = pair
    await copy(runtime, src, "dir/a.txt", dst, "renamed.txt")
    await copy(runtime, src, "dir/a.txt", dst, "into/")
    await copy(runtime, src, "dir/a.txt", dst, "nested/deeper/file.txt")
    target = home(runtime, dst)
    assert (target / "renamed.txt").read_text() == "a"
    assert (target / "into" / "a.txt").read_text() == "a"
    assert (target / "nested" / "deeper" / "file.txt").read_text() == "a"


async def test_within_one_project(
    runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec]
) -> None:
    src, _ = pair
    await copy(runtime, src, "dir/", src, "dir2")
    await copy(runtime, src, "dir", src, f"/projects/{src.project_id}/dir")  # same path: no-op
    assert tree(home(runtime, src) / "dir2") == tree(home(runtime, src) / "dir")


async def test_newer_targets_are_kept_unless_asked(
    runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec], sh: Shell
) -> None:
    src, dst = pair
    await runtime.write_file(dst, "t/a.txt", b"newer")
    await sh(dst, "touch -d '+1 hour' t/a.txt")
    await copy(runtime, src, "dir/", dst, "t")
    assert (home(runtime, dst) / "t" / "a.txt").read_text() == "newer"
    await copy(runtime, src, "dir/", dst, "t", overwrite_newer=True)
    assert (home(runtime, dst) / "t" / "a.txt").read_text() == "a"


async def test_delete_backup_and_exclude(
    runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec], sh: Shell
) -> None:
    src, dst = pair
    await runtime.write_file(src, "dir/skip.log", b"log")
    await runtime.write_file(dst, "t/extra.txt", b"extra")
    await runtime.write_file(dst, "t/a.txt", b"old")
    await sh(dst, "touch -d '-1 hour' t/a.txt")
    await copy(runtime, src, "dir/", dst, "t", backup=True, exclude=["*.log"])
    assert tree(home(runtime, dst) / "t") == {
        "a.txt": "a",
        "a.txt~": "old",
        "extra.txt": "extra",
        "sub": "/",
        "sub/b.txt": "b",
    }
    await copy(runtime, src, "dir/", dst, "t", delete_missing=True, exclude=["*.log"])
    assert sorted(tree(home(runtime, dst) / "t")) == ["a.txt", "sub", "sub/b.txt"]


async def test_links_are_copied_as_links_never_followed(
    runtime: LocalRuntime, projects: Projects, pair: tuple[ProjectSpec, ProjectSpec], sh: Shell
) -> None:
    src, dst = pair
    other = projects.spec(runtime)
    await runtime.write_file(other, "secret.txt", b"other's secret")
    other_host = home(runtime, other)
    await sh(
        src,
        f"ln -s /projects/{other.project_id} dir/to_other; ln -s {other_host} dir/to_other_host; "
        f"ln -s /projects/{other.project_id}/secret.txt dir/secret_link; "
        f"ln -s {other_host} escape",
    )
    await copy(runtime, src, "dir/", dst, "t")
    copied = tree(home(runtime, dst) / "t")
    assert copied["to_other"] == f"-> /projects/{other.project_id}"
    assert copied["to_other_host"] == f"-> {other_host}"
    assert "other's secret" not in copied.values()
    # A source path that is a link out of the project resolves in the source's own view,
    # where the other project does not exist.
    with pytest.raises(FileFailure):
        await copy(runtime, src, "escape/", dst, "stolen")
    assert not (home(runtime, dst) / "stolen" / "secret.txt").exists()


async def test_target_quota(runtime: LocalRuntime, projects: Projects, sh: Shell) -> None:
    src = projects.spec(runtime)
    dst = projects.spec(runtime, Quota(disk_mb=1))
    await sh(src, "mkdir big; head -c 2000000 /dev/urandom > big/blob")
    with pytest.raises(QuotaExceeded):
        await copy(runtime, src, "big/", dst, "big")
    assert not (home(runtime, dst) / "big").exists()


async def test_missing_source(runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec]) -> None:
    src, dst = pair
    with pytest.raises(FileFailure) as info:
        await copy(runtime, src, "nope", dst, "x")
    assert str(info.value) == (
        f"ENOENT: no such file or directory, stat '/projects/{src.project_id}/nope'"
    )


async def test_paths_must_stay_in_the_homes(
    runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec]
) -> None:
    src, dst = pair
    with pytest.raises(RuntimeFailure, match="source path must be contained in project home dir"):
        await copy(runtime, src, "../x", dst, "x")
    with pytest.raises(RuntimeFailure, match="target path must be contained in target project"):
        await copy(runtime, src, "dir", dst, "/etc")


def test_the_sender_runs_only_read_only_options() -> None:
    good = ["rsync", "--server", "--sender", "-bulogDtprxe.iLsfxCIvu", "--timeout=9", ".", "x"]
    assert sender_argv(good, "/projects/p/dir/") == [*good[:-1], "/projects/p/dir/"]
    refused = [
        ["rsync", "--server", "-logDtprxe.iLsfxCIvu", ".", "x"],  # a receiver
        ["rsync", "--server", "--sender", "-slogDtprxe.iLsfxCIvu", ".", "x"],  # args via stdin
        ["rsync", "--server", "--sender", "-logDtprxe.iL", "--remove-source-files", ".", "x"],
        ["rsync", "--server", "--sender", "-logDtprxe.iL", "--log-file=/projects/p/x", ".", "x"],
        ["sh", "-c", "evil"],
    ]
    for argv in refused:
        with pytest.raises(ValueError):
            sender_argv(argv, "/projects/p/dir/")
