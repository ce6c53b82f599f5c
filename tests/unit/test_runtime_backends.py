"""Choosing the runtime backend by name, as the `runtime` setting does."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from calchub.runtime import LocalRuntime, ProjectSpec, Quota, RuntimeOptions, build_runtime
from calchub.runtime.backends import UnknownBackend, backend_class
from calchub.runtime.fake import FakeRuntime


def test_names_and_dotted_paths(tmp_path: Path) -> None:
    # Socket paths must stay short, so the runtime folder does not live in tmp_path.
    with tempfile.TemporaryDirectory(prefix="/tmp/crb-") as short:
        options = RuntimeOptions(tmp_path, Path(short), sandbox=False, quiet_after_s=4.0)
        local = build_runtime("local", options)
    assert isinstance(local, LocalRuntime) and not local.sandboxed
    assert local._agent_config(ProjectSpec("p", 1, Quota()), 3, frozenset())["quiet_s"] == 4.0
    assert isinstance(build_runtime("fake", options), FakeRuntime)
    assert backend_class("calchub.runtime.fake:FakeRuntime") is FakeRuntime


@pytest.mark.parametrize(
    "name", ["docker", "calchub.runtime.fake:Nope", "no.such.module:X", "calchub.hub:Hub"]
)
def test_unknown_backends_are_refused_with_a_reason(name: str) -> None:
    with pytest.raises(UnknownBackend):
        backend_class(name)


def test_the_fake_runtime_can_always_run_projects(tmp_path: Path) -> None:
    runtime = build_runtime("fake", RuntimeOptions(tmp_path, tmp_path))
    assert runtime.check() is None and runtime.problem is None


def test_the_local_runtime_refuses_an_unknown_disk_mode() -> None:
    with pytest.raises(ValueError, match="disk must be one of auto, image, none"):
        LocalRuntime(Path("/tmp/p"), Path("/tmp/r"), disk="zfs")
