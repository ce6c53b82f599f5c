"""What a project's start imports: the agent serves its first request without the standard
library's heavy modules (each would add its import time to every start)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from calchub.runtime import sandbox

AGENT_PARENT = Path(__file__).resolve().parents[2] / "src" / "calchub" / "runtime"
# socket and signal turn their constants into enums; json compiles regular expressions.
AVOIDED = {"enum", "socket", "signal", "selectors", "re", "json", "typing"}


@pytest.mark.skipif(not os.access(sandbox.SYSTEM_PYTHON, os.X_OK), reason="no system Python")
def test_the_start_path_imports_none_of_the_heavy_modules() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(AGENT_PARENT)!r}); "
        "import agent.main, agent.server, agent.once; print(' '.join(sys.modules))"
    )
    argv = [*sandbox.AGENT_PYTHON, "-B", "-c", code]
    loaded = set(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split())
    assert "agent.server" in loaded
    assert not AVOIDED & loaded
