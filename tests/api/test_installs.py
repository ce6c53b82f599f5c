"""Two installs on one machine (a staging and a production site, say) never run projects
under the same uids or share a runtime folder: each install has its own block of uids and
its own runtime folder, recorded in its database and in the machine's install registry, and
a server that would share them with another install refuses to start."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ApiClient, Loop, Server, throwaway_database
from tests.scratch import scratch_folder, stop_sandboxes


def registry() -> Path:
    return Path(os.environ["CALCHUB_INSTALL_REGISTRY"])


class Site:
    def __init__(self, server: Server, key: str) -> None:
        self.server = server
        self.key = key
        self.api = ApiClient(server.url)

    def project_uid(self) -> int:
        reply = self.api.call("create_project", self.key, {"title": "install"})
        assert reply.event == "project_created", reply.body
        project_id = reply["project_id"]
        reply = self.api.call(
            "project_exec", self.key, {"project_id": project_id, "command": "id -u", "bash": True}
        )
        assert reply.get("exit_code") == 0, reply.body
        return int(reply["stdout"])


@pytest.fixture(scope="module")
def sites(loop: Loop) -> Iterator[list[Site]]:
    """Two fresh sites, each with its own database; the first with the default runtime
    folder (its install's own under /run/calchub)."""
    made: list[Site] = []
    runtime_roots: list[Path] = []
    with (
        throwaway_database(scratch_folder("a") / "calchub.db", loop) as first,
        throwaway_database(scratch_folder("b") / "calchub.db", loop) as second,
    ):
        # A machine-wide runtime folder left private (a server's umask 077 made it so) must
        # not keep projects from starting: the server makes it traversable again.
        Path("/run/calchub").mkdir(mode=0o700, exist_ok=True)
        os.chmod("/run/calchub", 0o700)
        try:
            for index, url in enumerate((first, second)):
                server = Server(scratch_folder("d"), url, None)
                if index == 0:
                    del server.env["CALCHUB_RUNTIME_ROOT"]
                key = server.start()
                assert key
                made.append(Site(server, key))
            yield made
        finally:
            for site in made:
                site.api.close()
                site.server.stop()
            entries = json.loads(registry().read_text())["installs"]
            for entry in entries.values():
                if entry["runtime_root"].startswith("/run/calchub/"):
                    runtime_roots.append(Path(entry["runtime_root"]))
            for root in runtime_roots:
                if root.is_dir():
                    stop_sandboxes(root)
                    shutil.rmtree(root, ignore_errors=True)


def _entry_of(server: Server) -> tuple[str, dict[str, object]]:
    entries = json.loads(registry().read_text())["installs"]
    found = [(name, e) for name, e in entries.items() if e["data_dir"] == str(server.data_dir)]
    assert len(found) == 1, entries
    return found[0]


def test_two_installs_get_their_own_uids_and_runtime_folders(sites: list[Site]) -> None:
    a, b = sites
    uid_a, uid_b = a.project_uid(), b.project_uid()
    name_a, entry_a = _entry_of(a.server)
    name_b, entry_b = _entry_of(b.server)
    assert name_a != name_b
    assert entry_a["uid_first"] <= uid_a <= entry_a["uid_last"]  # type: ignore[operator]
    assert entry_b["uid_first"] <= uid_b <= entry_b["uid_last"]  # type: ignore[operator]
    assert entry_a["uid_block"] != entry_b["uid_block"]
    assert entry_a["runtime_root"] == f"/run/calchub/{name_a}"
    assert Path(f"/run/calchub/{name_a}").is_dir()
    assert oct(Path("/run/calchub").stat().st_mode & 0o777) == "0o711"
    assert entry_b["runtime_root"] == b.server.env["CALCHUB_RUNTIME_ROOT"]
    assert oct(registry().stat().st_mode & 0o777) == "0o600"


def test_a_server_sharing_a_runtime_folder_is_refused(sites: list[Site], loop: Loop) -> None:
    _, b = sites
    with throwaway_database(scratch_folder("c") / "calchub.db", loop) as url:
        intruder = Server(scratch_folder("d"), url, None)
        intruder.env["CALCHUB_RUNTIME_ROOT"] = b.server.env["CALCHUB_RUNTIME_ROOT"]
        with pytest.raises(RuntimeError, match="belongs to another calchub install"):
            intruder.start()
        intruder.stop()


def test_a_server_whose_uids_another_install_has_is_refused(sites: list[Site]) -> None:
    # Last in this module: it restarts the second site.
    _, b = sites
    b.server.stop()
    name, entry = _entry_of(b.server)
    # Another install on this machine got the same block (say, a copy of this database
    # set up as a second site, its registry entry kept).
    document = json.loads(registry().read_text())
    document["installs"]["0123456789ab"] = {
        **entry,
        "runtime_root": "/run/calchub/0123456789ab",
        "data_dir": "/srv/elsewhere",
    }
    registry().write_text(json.dumps(document))
    with pytest.raises(RuntimeError, match=r"project uids .* are those of another calchub"):
        b.server.start()
    # Once the operator removes the other entry, it starts again.
    del document["installs"]["0123456789ab"]
    registry().write_text(json.dumps(document))
    assert b.server.start() is None  # no new admin: the site exists
    assert name in json.loads(registry().read_text())["installs"]
