"""What a project can see and touch: its own home, a private /tmp, read-only system
folders, no other project, no server folders, no network unless its quota allows it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from calchub.runtime import LocalRuntime, ProjectSpec, Quota
from tests.runtime.conftest import Projects, Shell, host_exists


async def test_system_folders_are_read_only(sh: Shell, project: ProjectSpec) -> None:
    for target in ("/usr/x", "/etc/x", "/x", "/projects/x"):
        result = await sh(project, f"touch {target}")
        assert result.exit_code != 0, target
        assert "Read-only file system" in result.stderr
    assert (await sh(project, "touch /tmp/x ~/x && echo ok")).stdout == "ok\n"


async def test_tmp_is_private_to_the_project(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    a, b = projects.spec(runtime), projects.spec(runtime)
    await sh(a, "echo secret > /tmp/shared-name")
    assert (await sh(b, "cat /tmp/shared-name")).exit_code != 0
    assert not host_exists("/tmp/shared-name")


async def test_only_its_own_home_exists(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    a, b = projects.spec(runtime), projects.spec(runtime)
    await runtime.start(b)
    result = await sh(a, "ls /projects")
    assert result.stdout == f"{a.project_id}\n"
    assert (await sh(a, f"ls /projects/{b.project_id}")).exit_code != 0


async def test_server_folders_do_not_exist_inside(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    a, b = projects.spec(runtime), projects.spec(runtime)
    await runtime.start(b)
    hidden = [
        runtime.projects_root,
        runtime.projects_root.parent,
        runtime.runtime_root,
        runtime.runtime_root / b.project_id / "sock",
        runtime.projects_root / b.project_id,
    ]
    for path in hidden:
        if str(path) in ("/", "/tmp"):
            continue
        assert (await sh(a, f"test -e {path}")).exit_code == 1, path


async def test_processes_of_other_projects_are_invisible(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    a, b = projects.spec(runtime), projects.spec(runtime)
    await sh(b, "nohup sleep 1004 >/dev/null 2>&1 &")
    result = await sh(a, "ps -eo args")
    assert "sleep 1004" not in result.stdout


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's loopback that accepts whatever comes."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()


CONNECT = (
    'python3 -c \'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])),'
    ' timeout=3); print("connected")\' {port}'
)


async def test_no_network_by_default(sh: Shell, project: ProjectSpec, listener: int) -> None:
    result = await sh(project, CONNECT.format(port=listener))
    assert result.exit_code != 0
    assert "connected" not in result.stdout
    interfaces = await sh(project, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert interfaces.stdout.split() == ["lo"]


async def test_a_networked_project_still_cannot_reach_the_hosts_loopback(
    runtime: LocalRuntime, projects: Projects, sh: Shell, listener: int
) -> None:
    # Its traffic leaves through its own namespace's NAT (test_network.py shows it reaching
    # out); the host's own services stay out of reach.
    spec = projects.spec(runtime, Quota(network=True))
    result = await sh(spec, CONNECT.format(port=listener))
    assert result.exit_code != 0
    assert "connected" not in result.stdout


async def test_runs_as_the_project_uid_without_privileges(sh: Shell, project: ProjectSpec) -> None:
    result = await sh(project, "id -u; id -g; grep CapEff /proc/self/status")
    uid, gid, caps = result.stdout.split("\n")[:3]
    assert (int(uid), int(gid)) == (project.uid, project.uid)
    assert caps.split()[1] == "0000000000000000"


async def test_agent_socket_is_root_only(runtime: LocalRuntime, project: ProjectSpec) -> None:
    rundir = runtime.runtime_root / project.project_id
    st = rundir.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o700)
