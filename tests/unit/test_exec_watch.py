"""What a running command tells its watcher (asynchronous jobs): bounded whatever the project
sends, passed on by the channel before the reply, and given up when the project sends more
than an honest agent could; agents and relays that send no news run the command as before."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from calchub.runtime import ExecRequest, ExecWatch, LocalRuntime, ProjectSpec, Quota, channel
from calchub.runtime.base import MAX_EXEC_SAMPLES, RuntimeFailure
from calchub.runtime.local import _ExecEvents

FRAME = struct.Struct(">I")
SAMPLE = {"timestamp": 1700000000000, "mem_rss": 12.5, "cpu_pct": 3.0, "cpu_secs": 0.25}


def test_output_is_kept_up_to_one_character_beyond_the_limit() -> None:
    watch = ExecWatch(5)
    watch.add_output("abc", "")
    watch.add_output("defgh", "x" * 100)
    before = watch.changes
    watch.add_output("more", "more")  # both full: nothing changes
    assert (watch.stdout(), watch.stderr()) == ("abcdef", "x" * 6)
    assert watch.changes == before


@pytest.mark.parametrize("pid", [True, 0, -4, 1 << 40, "12", 1.5, None])
def test_an_implausible_pid_is_unknown(pid: object) -> None:
    watch = ExecWatch(10)
    watch.begin(pid)
    assert watch.started.is_set() and watch.pid is None


def test_the_first_start_counts() -> None:
    watch = ExecWatch(10)
    watch.begin(42)
    watch.begin(43)
    assert watch.pid == 42


def test_samples_must_be_numbers_and_only_the_last_are_kept() -> None:
    watch = ExecWatch(10)
    for bad in (
        {**SAMPLE, "mem_rss": "1"},
        {**SAMPLE, "cpu_pct": float("nan")},
        {**SAMPLE, "cpu_secs": -1},
        {**SAMPLE, "timestamp": True},
        {k: v for k, v in SAMPLE.items() if k != "cpu_secs"},
    ):
        watch.add_sample(bad)
    assert list(watch.samples) == []
    for n in range(MAX_EXEC_SAMPLES + 5):
        watch.add_sample({**SAMPLE, "timestamp": n, "extra": "dropped"})
    assert len(watch.samples) == MAX_EXEC_SAMPLES
    assert watch.samples[0] == {**SAMPLE, "timestamp": 5}


def test_news_goes_to_the_watch_until_there_is_too_much() -> None:
    watch = ExecWatch(3)
    events = _ExecEvents(watch, timeout_s=1)
    events({"event": "started", "pid": 7}, 30)
    events({"event": "output", "stdout": "ab", "stderr": ["not text"]}, 40)
    events({"event": "stats", **SAMPLE}, 90)
    events({"event": "something new"}, 20)
    assert (watch.pid, watch.stdout(), watch.stderr(), len(watch.samples)) == (7, "ab", "", 1)
    with pytest.raises(RuntimeFailure, match="too much"):
        events({"event": "output", "stdout": "", "stderr": ""}, 1 << 21)


def _agent(
    path: Path, frames: list[dict[str, Any]], seen: list[dict[str, Any]]
) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    listener.settimeout(10)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            conn.settimeout(10)
            (length,) = FRAME.unpack(conn.recv(FRAME.size, socket.MSG_WAITALL))
            seen.append(json.loads(conn.recv(length, socket.MSG_WAITALL)))
            for frame in frames:
                data = json.dumps(frame).encode()
                conn.sendall(FRAME.pack(len(data)) + data)
            # Whatever happens next, the hub ends the connection.
            seen.append({"closed": conn.recv(1) == b""})

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_the_channel_passes_news_before_the_reply(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    frames = [{"event": "started", "pid": 3}, {"event": "output", "stdout": "a"}, {"ok": True}]
    thread = _agent(tmp_path / "sock", frames, seen)
    news: list[tuple[dict[str, Any], int]] = []
    reply, _ = asyncio.run(
        channel.call(
            str(tmp_path / "sock"),
            {"op": "exec_watch"},
            wait_s=10,
            on_event=lambda event, size: news.append((event, size)),
        )
    )
    thread.join(10)
    assert reply == {"ok": True}
    assert [event for event, _ in news] == frames[:2]
    assert [size for _, size in news] == [len(json.dumps(f).encode()) for f in frames[:2]]
    assert seen == [{"op": "exec_watch"}, {"closed": True}]


def test_a_handler_that_gives_up_ends_the_connection(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    thread = _agent(tmp_path / "sock", [{"event": "output", "stdout": "a"}], seen)

    def refuse(_event: dict[str, Any], _size: int) -> None:
        raise RuntimeFailure("enough")

    with pytest.raises(RuntimeFailure, match="enough"):
        asyncio.run(
            channel.call(str(tmp_path / "sock"), {"op": "exec_watch"}, wait_s=10, on_event=refuse)
        )
    thread.join(10)
    assert seen[-1] == {"closed": True}


def test_a_relay_is_not_asked_for_news() -> None:
    endpoint = channel.NetworkEndpoint("127.0.0.1", 9, "00", b"t")
    with pytest.raises(channel.NoEvents):
        asyncio.run(channel.call(endpoint, {"op": "exec_watch"}, wait_s=1, on_event=print))


@pytest.mark.parametrize("refusal", ["unknown operation", "relay"])
def test_without_news_the_command_runs_as_a_plain_exec(refusal: str) -> None:
    """An agent started before watched execs (it does not know the operation) or a relay:
    the command runs as before, its start known but not its pid."""
    # A short root (the runtime refuses one too long for its sockets' paths); nothing is
    # made there.
    runtime = LocalRuntime(Path("/tmp/p"), Path("/tmp/r"), sandbox=False)
    asked: list[str] = []

    async def call(
        _spec: ProjectSpec, header: dict[str, Any], *_: Any, **kw: Any
    ) -> tuple[dict[str, Any], bytes]:
        asked.append(header["op"])
        if header["op"] == "exec_watch":
            if refusal == "relay":
                raise channel.NoEvents("no news")
            message = "ValueError(\"unknown operation 'exec_watch'\")"
            return {"ok": False, "error": {"code": "EAGENT", "message": message}}, b""
        assert "on_event" not in kw
        return {"ok": True, "stdout": "out", "stderr": "", "exit_code": 0}, b""

    runtime._call = call  # type: ignore[method-assign]
    watch = ExecWatch(100)
    spec = ProjectSpec("00000000-0000-4000-8000-000000000000", 0, Quota())
    result = asyncio.run(runtime.exec(spec, ExecRequest("true", [], "", 5.0, 100, False), watch))
    assert asked == ["exec_watch", "exec"]
    assert result.stdout == "out"
    assert watch.started.is_set() and watch.pid is None
