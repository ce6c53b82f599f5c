"""Fixtures of the API tests that run more than one hub."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import Server


@pytest.fixture(scope="module")
def second_hub(server: Server, database_url: str) -> Iterator[Server]:
    """Another `calchub serve` on the same machine: the same database, data folder, project
    homes and runtime folder (where the hubs see each other's running projects)."""
    hub = Server(server.data_dir, database_url, None)
    for name in ("CALCHUB_RUNTIME_ROOT", "CALCHUB_PROJECTS_ROOT"):
        hub.env[name] = server.env[name]
    hub.projects_root = server.projects_root
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
