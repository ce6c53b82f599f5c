"""The explicit development mode without a sandbox."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from calchub.runtime import ExecRequest, LocalRuntime
from tests.runtime.conftest import Projects, processes_of


async def test_unsandboxed_smoke(
    roots: tuple[Path, Path], projects: Projects, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="calchub.runtime.local"):
        rt = LocalRuntime(*roots, sandbox=False)
    assert "UNSANDBOXED" in caplog.text
    spec = projects.spec(rt)
    home = roots[0] / spec.project_id
    try:
        result = await rt.exec(spec, ExecRequest("pwd", [], "", 10, None, False))
        assert result.stdout == f"{home}\n"
        await rt.write_file(spec, "x/y.txt", b"plain")
        assert (home / "x" / "y.txt").read_bytes() == b"plain"
        assert await rt.read_file(spec, "x/y.txt", 100) == b"plain"
        timed = await rt.exec(spec, ExecRequest("sleep 1005 & sleep 1005", [], "", 1, None, True))
        assert timed.timed_out
        assert not [p for p in processes_of(0) if "sleep 1005" in p]
        assert (await rt.status(spec.project_id)).running
    finally:
        await rt.stop(spec.project_id)
        await rt.close()
    assert not (await rt.status(spec.project_id)).running
