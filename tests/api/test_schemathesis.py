"""schemathesis against the live server, from the served OpenAPI document: every operation
gets generated valid and invalid bodies; none may answer 5xx or a crash, and every response
must match its schema. Bounded (a few examples per operation, fixed seed) to stay quick."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import User
from tests.harness import Server

HOOKS = "tests.api.schemathesis_hooks"
EXAMPLES_PER_OPERATION = 8
# The coverage phase (every boundary of every field) takes minutes; fuzzing covers the same
# ground at random.
PHASES = "examples,fuzzing"


def test_no_operation_fails_under_generated_input(server: Server, user: User) -> None:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "run",
        f"{server.url}/api/openapi.json",
        "--checks",
        "not_a_server_error,response_schema_conformance,no_internal_error",
        "--phases",
        PHASES,
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        "1",
        "--request-timeout",
        "60",
        "--workers",
        "2",
        "--header",
        f"Authorization: Bearer {user.api_key}",
        "--no-color",
        "--continue-on-failure",
    ]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(root)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=root)
    report = result.stdout[-20000:] + result.stderr[-5000:]
    assert result.returncode == 0, report
    # The run covered the whole document, and every generated case passed its checks.
    selected = re.search(r"Operations:\s+(\d+) selected / (\d+) total", report)
    assert selected and selected.group(1) == selected.group(2), report
    assert "✅ Fuzzing" in report and " passed" in report, report
