"""Copies into a fresh target, made without rsync: the same result as rsync's, the rest left
to rsync, and a writer that no stream can lead outside its target."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from calchub.runtime import LocalRuntime, ProjectSpec, RuntimeFailure
from calchub.runtime import copy as copy_module
from calchub.runtime.agent import trees
from calchub.runtime.agent.project import Config, Project
from calchub.runtime.agent.wire import recv_frame
from tests.runtime.conftest import Projects, Shell
from tests.runtime.test_copy import copy, home
from tests.runtime.test_copy import pair as pair  # a fixture

Entry = tuple[str, int, int | None, bytes]


def attributes(root: Path) -> dict[bytes, Entry]:
    """Every entry from `root` down, by relative name: its kind, mode, mtime (not of links,
    which rsync --omit-link-times leaves alone) and content or link target."""
    found: dict[bytes, Entry] = {}
    top = os.fsencode(root)
    for folder, dirs, files in os.walk(top):
        for name in [b"", *dirs, *files] if folder == top else [*dirs, *files]:
            path = os.path.join(folder, name) if name else folder
            st = os.lstat(path)
            relative = os.path.relpath(path, top)
            if stat.S_ISLNK(st.st_mode):
                found[relative] = ("link", 0, None, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[relative] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns, b"")
            elif stat.S_ISREG(st.st_mode):
                content = Path(path.decode(errors="surrogateescape")).read_bytes()
                found[relative] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns, content)
            else:
                found[relative] = ("other", stat.S_IMODE(st.st_mode), st.st_mtime_ns, b"")
    return found


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each copy since was finished without rsync."""
    outcomes: list[bool] = []
    original = copy_module._stream

    def recorded(*args: object) -> bool:
        done = original(*args)  # type: ignore[arg-type]
        outcomes.append(done)
        return done

    monkeypatch.setattr(copy_module, "_stream", recorded)
    return outcomes


TREE = r"""
set -e
mkdir -p t/ro t/deep/a/b/c t/empty t/.calchub-tmp
cd t
echo plain > plain; echo run > run.sh; chmod 755 run.sh; echo mine > private; chmod 600 private
echo fixed > ro/inside; chmod 444 ro/inside; chmod 555 ro
: > empty.txt; head -c 700000 /dev/urandom > big.bin; echo deep > deep/a/b/c/f
echo left > .calchub-tmp/x
for name in -dash 'sp ace' $'new\nline' $'\xff\xfe' 'üñï' 'a\b' '...' .hidden; do
    echo "$name" > "$name"
done
ln -s plain ln_rel; ln -s /etc/passwd ln_out; ln -s /projects/OTHER/secret ln_other
ln -s nowhere ln_dangling; ln -s ro ln_dir
touch -h -d '2001-02-03 04:05:06.123456789' plain deep/a ln_rel
touch -d '2011-12-13 14:15:16.5' ro deep .
# rsync leaves a new folder's mtime alone when it is in the same second as the source's
# (it compares folders' times to the second): no folder is that new here.
touch -d '2021-01-01 00:00:00.25' deep/a/b deep/a/b/c empty
"""


async def test_a_fresh_target_gets_what_rsync_makes(
    runtime: LocalRuntime,
    projects: Projects,
    pair: tuple[ProjectSpec, ProjectSpec],
    sh: Shell,
    streamed: list[bool],
) -> None:
    src, dst = pair
    other = projects.spec(runtime)
    made = await sh(src, TREE.replace("OTHER", other.project_id))
    assert made.exit_code == 0, made.stderr
    await sh(dst, "mkdir by_rsync")  # an existing target: rsync makes this one
    await copy(runtime, src, "t/", dst, "fresh")
    await copy(runtime, src, "t/", dst, "by_rsync")
    assert streamed == [True, False]
    fresh = attributes(home(runtime, dst) / "fresh")
    assert fresh == attributes(home(runtime, dst) / "by_rsync")
    source = attributes(home(runtime, src) / "t")
    assert b".calchub-tmp" not in fresh
    del source[b".calchub-tmp"], source[b".calchub-tmp/x"]
    assert fresh == source
    assert fresh[b"ln_other"] == ("link", 0, None, f"/projects/{other.project_id}/secret".encode())
    owners = {p.lstat().st_uid for p in (home(runtime, dst) / "fresh").rglob("*")}
    assert owners == {dst.uid}
    # A link given as the source is copied as the link, into a new name or a new folder.
    await copy(runtime, src, "t/ln_out", dst, "one_link")
    await copy(runtime, src, "t/ln_out", dst, "in_here/")
    assert streamed[2:] == [True, True]
    assert os.readlink(home(runtime, dst) / "one_link") == "/etc/passwd"
    assert os.readlink(home(runtime, dst) / "in_here" / "ln_out") == "/etc/passwd"


# See TREE: folders no newer than rsync copies their times.
OLD = "touch -d '2021-01-01 00:00:00.25' s s/d s/d/fifo"


async def test_what_it_cannot_copy_rsync_finishes(
    runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec], sh: Shell, streamed: list[bool]
) -> None:
    src, dst = pair
    made = await sh(
        src, f"mkdir -p s/d && echo a > s/a && mkfifo s/d/fifo && echo b > s/d/b; {OLD}"
    )
    assert made.exit_code == 0, made.stderr
    await sh(dst, "mkdir by_rsync")
    await copy(runtime, src, "s/", dst, "fresh")
    await copy(runtime, src, "s/", dst, "by_rsync")
    assert streamed == [False, False]
    fresh = attributes(home(runtime, dst) / "fresh")
    assert fresh == attributes(home(runtime, dst) / "by_rsync")
    assert fresh[b"d/fifo"][0] == "other"
    # An unreadable file: rsync says so, and everything else is there, as rsync leaves it.
    await sh(src, f"echo no > s/d/locked && chmod 000 s/d/locked; {OLD}")
    with pytest.raises(RuntimeFailure, match="copy exited with an error"):
        await copy(runtime, src, "s/", dst, "fresh2")
    with pytest.raises(RuntimeFailure, match="copy exited with an error"):
        await copy(runtime, src, "s/", dst, "by_rsync")
    assert attributes(home(runtime, dst) / "fresh2") == attributes(home(runtime, dst) / "by_rsync")
    assert not (home(runtime, dst) / "fresh2" / "d" / "locked").exists()


async def test_exclude_patterns_are_left_to_rsync(
    runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec], streamed: list[bool]
) -> None:
    src, dst = pair
    await runtime.write_file(src, "dir/skip.log", b"log")
    await copy(runtime, src, "dir/", dst, "t", exclude=["*.log"])
    assert streamed == []
    assert not (home(runtime, dst) / "t" / "skip.log").exists()
    assert (home(runtime, dst) / "t" / "a.txt").read_text() == "a"


async def test_other_options_have_nothing_to_act_on_in_a_fresh_target(
    runtime: LocalRuntime, pair: tuple[ProjectSpec, ProjectSpec], streamed: list[bool]
) -> None:
    src, dst = pair
    options = {"overwrite_newer": True, "delete_missing": True, "backup": True, "timeout_s": 30}
    await copy(runtime, src, "dir/", dst, "t", **options)
    assert streamed == [True]
    assert attributes(home(runtime, dst) / "t") == attributes(home(runtime, src) / "dir")


# --- the writer against hostile streams ----------------------------------------------------


def entry(kind: int, name: bytes = b"", mode: int = 0o644, size: int = 0) -> bytes:
    return trees.ENTRY.pack(kind, len(name), mode, 10**18, size) + name


def file(name: bytes, content: bytes, whole: bool = True) -> bytes:
    return entry(trees.FILE, name, 0o644, len(content)) + content + (b"\1" if whole else b"\0")


# From home/target/l, where the tests' folder "outside" is.
OUTSIDE = b"../../outside"
ROOT, UP, END = entry(trees.DIR, b"", 0o755), entry(trees.UP), entry(trees.END)
HOSTILE = {
    "a name that climbs": ROOT + file(b"../up", b"x") + UP + END,
    "a name with a slash": ROOT + file(b"a/b", b"x") + UP + END,
    "a name that is the folder": ROOT + file(b".", b"x") + UP + END,
    "an empty name": ROOT + file(b"", b"x") + UP + END,
    "a NUL": ROOT + file(b"a\0b", b"x") + UP + END,
    "a link then a folder through it": ROOT
    + entry(trees.LINK, b"l", 0o777, len(OUTSIDE))
    + OUTSIDE
    + entry(trees.DIR, b"l")
    + file(b"f", b"x")
    + UP
    + UP
    + END,
    "a file written twice": ROOT + file(b"f", b"first") + file(b"f", b"second") + UP + END,
    "a file over a link": ROOT
    + entry(trees.LINK, b"l", 0o777, len(OUTSIDE))
    + OUTSIDE
    + file(b"l", b"x"),
    "a file cut short": ROOT + entry(trees.FILE, b"f", 0o644, 100) + b"x" * 10,
    "a file the reader disowned": ROOT + file(b"f", b"x", whole=False) + UP + END,
    "entries after the target": ROOT + UP + file(b"g", b"x") + END,
    "the end inside a folder": ROOT + entry(trees.DIR, b"d") + END,
    "too many ups": ROOT + UP + UP + END,
    "a named first entry": entry(trees.DIR, b"name") + UP + END,
    "a huge link": ROOT + entry(trees.LINK, b"l", 0o777, 1 << 20),
    "an unknown kind": ROOT + entry(ord("Z"), b"z") + UP + END,
}


def agent_project(home: Path) -> Project:
    return Project(
        Config({"project_id": "p", "home": str(home), "listen_fd": -1, "lock_path": "/nope"})
    )


def write_stream(home: Path, stream: bytes) -> dict[str, object]:
    """Run the writer on `stream` for target `home/target`; its last reply."""
    project = agent_project(home)
    hub, agent = socket.socketpair()
    feed, data = socket.socketpair()
    try:
        feed.sendall(stream)
        feed.shutdown(socket.SHUT_WR)
        request = {"dst": "target", "timeout_s": 10, "io_timeout_s": 10}
        trees.op_tree_write(project, agent, request, [data.detach()])
        agent.close()
        replies = list(frames(hub))
    finally:
        for sock in (hub, agent, feed, data):
            sock.close()
    assert replies[0]["event"] == "ready"
    return replies[-1]


def frames(sock: socket.socket) -> Iterator[dict[str, object]]:
    while True:
        try:
            yield recv_frame(sock)
        except EOFError:
            return


@pytest.mark.parametrize("name", list(HOSTILE))
def test_no_stream_leads_the_writer_out_of_its_target(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "outside").mkdir()
    reply = write_stream(home, HOSTILE[name])
    assert reply == {"ok": True, "complete": False, "files": reply["files"]}
    assert list((tmp_path / "outside").iterdir()) == []
    assert sorted(p.name for p in home.iterdir()) in ([], ["target"])
    for path in (home / "target").rglob("*") if (home / "target").exists() else []:
        assert path.is_symlink() or path.is_dir() or path.read_bytes() in (b"x", b"first")
        if path.is_file() and not path.is_symlink():
            # Only whole files get a name, and they have the source's mtime.
            assert path.stat().st_mtime_ns == 10**18


def test_a_sound_stream_is_written_whole(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    stream = ROOT + file(b"f", b"content") + entry(trees.DIR, b"d", 0o500) + UP + UP + END
    assert write_stream(home, stream) == {"ok": True, "complete": True, "files": 1}
    assert (home / "target" / "f").read_bytes() == b"content"
    assert stat.S_IMODE((home / "target" / "d").stat().st_mode) == 0o500
    assert (home / "target").stat().st_mtime_ns == 10**18
    # A target that exists is rsync's: the writer says so and touches nothing.
    hub, agent = socket.socketpair()
    feed, data = socket.socketpair()
    with hub, agent, feed, data:
        trees.op_tree_write(agent_project(home), agent, {"dst": "target"}, [data.detach()])
        assert recv_frame(hub) == {"ok": True, "fresh": False}
