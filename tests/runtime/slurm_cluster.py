"""A real Slurm cluster on this machine for the Slurm runtime's tests: munged, slurmctld, and
slurmd "nodes" each in a network namespace of its own, joined to the controller by veth
pairs on a private bridge. Only names and addresses this module makes are touched: a bridge,
namespaces and veths named after the run, a /24 in 10.0.0.0/8 no route on this machine uses.

What a cluster made is recorded in REGISTRY/<tag>.json while a lock on REGISTRY/<tag>.lock is
held; a test session killed outright cannot clean up, so the next cluster to start removes
whatever a record with a free lock names.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calchub.runtime import procfs

REGISTRY = Path("/tmp/calchub-test-clusters")
TOOLS = ("slurmctld", "slurmd", "slurmstepd", "sbatch", "scontrol", "munged", "ip", "nsenter")
START_TIMEOUT_S = 60.0


def missing_tools() -> list[str]:
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    return [tool for tool in TOOLS if shutil.which(tool, path=path) is None]


@dataclass
class Node:
    name: str
    netns: str
    veth: str
    address: str
    slurmd: subprocess.Popen[bytes] | None = None


@dataclass
class SlurmCluster:
    folder: Path
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    nodes: list[Node] = field(default_factory=list)
    bridge: str = ""
    controller_address: str = ""
    daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)
    lock_fd: int | None = None
    _planned: list[tuple[str, str]] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SLURM_CONF": str(self.conf)}

    def start(self, node_count: int = 2) -> None:
        self.folder.chmod(0o700)
        sweep_abandoned()
        self._claim(node_count)
        subnet = _free_subnet()
        hosts = list(subnet.hosts())
        self.controller_address = str(hosts[0])
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.controller_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(node_count):
            netns, veth = self._planned[i]
            node = Node(f"n{i + 1}", netns, veth, str(hosts[i + 1]))
            self.nodes.append(node)
            _ip("netns", "add", node.netns)
            _ip(
                "link",
                "add",
                node.veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                node.netns,
            )
            _ip("link", "set", node.veth, "master", self.bridge, "up")
            _ip("-n", node.netns, "addr", "add", f"{node.address}/24", "dev", "eth0")
            _ip("-n", node.netns, "link", "set", "eth0", "up")
            _ip("-n", node.netns, "link", "set", "lo", "up")
            _ip("-n", node.netns, "route", "add", "default", "via", self.controller_address)
        self._start_munge()
        self._write_conf()
        self._daemon("slurmctld", ["slurmctld", "-D", "-i"])
        for node in self.nodes:
            self.start_node(node)
        self.wait_idle()

    def _start_munge(self) -> None:
        munge = self.folder / "munge"
        munge.mkdir(mode=0o700)
        key = munge / "key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o600)
        self._daemon(
            "munged",
            ["munged", "-F", "-f", f"--socket={munge / 'sock'}", f"--key-file={key}",
             f"--log-file={munge / 'log'}", f"--pid-file={munge / 'pid'}",
             f"--seed-file={munge / 'seed'}"],
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (munge / "sock").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("munged did not start")
            time.sleep(0.05)

    def _write_conf(self) -> None:
        f = self.folder
        with socket.socket() as probe:
            probe.bind((self.controller_address, 0))
            controller_port = probe.getsockname()[1]
        lines = [
            f"ClusterName=calchub{self.tag}",
            f"SlurmctldHost={socket.gethostname()}({self.controller_address})",
            f"SlurmctldPort={controller_port}",
            "SlurmdPort=6818",  # each node in its own namespace
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={f / 'munge' / 'sock'}",
            f"StateSaveLocation={f / 'state'}",
            f"SlurmdSpoolDir={f / 'spool'}/%n",
            f"SlurmctldPidFile={f / 'slurmctld.pid'}",
            f"SlurmdPidFile={f / 'slurmd'}-%n.pid",
            f"SlurmctldLogFile={f / 'slurmctld.log'}",
            f"SlurmdLogFile={f / 'slurmd'}-%n.log",
            # No cgroup plugin here: this machine's cgroups belong to the local runtime.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SlurmdParameters=config_overrides",
            "MpiDefault=none",
            "ReturnToService=2",
            "SlurmdTimeout=6",
            "MessageTimeout=5",
            "KillWait=2",
            "MinJobAge=600",
            "InactiveLimit=0",
        ]
        host = socket.gethostname()
        for node in self.nodes:
            lines.append(
                f"NodeName={node.name} NodeAddr={node.address} NodeHostname={host} "
                "CPUs=2 RealMemory=3000 State=UNKNOWN"
            )
        lines.append("PartitionName=calchub Nodes=ALL Default=YES MaxTime=INFINITE State=UP")
        (f / "state").mkdir(mode=0o700)
        (f / "spool").mkdir(mode=0o700)
        self.conf.write_text("\n".join(lines) + "\n")

    def _daemon(
        self, name: str, argv: list[str], netns: str | None = None
    ) -> subprocess.Popen[bytes]:
        if netns is not None:
            # nsenter, not `ip netns exec`, which would hide the host's cgroup tree.
            argv = ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]
        log = open(self.folder / f"{name}.out", "ab")  # noqa: SIM115 - kept by the daemon
        with log:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=log, env=self.env, start_new_session=True
            )
        self.daemons.append(proc)
        self._record()
        return proc

    def start_node(self, node: Node) -> None:
        (self.folder / "spool" / node.name).mkdir(mode=0o700, exist_ok=True)
        node.slurmd = self._daemon(
            f"slurmd-{node.name}", ["slurmd", "-D", "-N", node.name], node.netns
        )

    def kill_node(self, node: Node) -> None:
        """The node dies: its slurmd and everything running in its namespace (the jobs
        and, below them, the sandboxes, which have namespaces of their own)."""
        for pid in self.processes_in(node):
            procfs.kill(procfs.tree(pid))
        if node.slurmd is not None:
            node.slurmd.wait()
            node.slurmd = None

    def processes_in(self, node: Node) -> list[int]:
        done = subprocess.run(
            ["ip", "netns", "pids", node.netns], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in done.stdout.split()]

    def scontrol(self, *args: str) -> str:
        return subprocess.run(
            ["scontrol", *args], capture_output=True, text=True, env=self.env, check=True,
            timeout=30,
        ).stdout  # fmt: skip

    def node_states(self) -> dict[str, str]:
        states = {}
        for line in self.scontrol("-o", "show", "node").splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            states[fields.get("NodeName", "")] = fields.get("State", "")
        return states

    def wait_idle(self) -> None:
        """Until every node has registered and takes jobs."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(subprocess.CalledProcessError):
                states = self.node_states()
                if len(states) == len(self.nodes) and all(
                    s.startswith(("IDLE", "MIXED", "ALLOCATED")) and "NOT_RESPONDING" not in s
                    for s in states.values()
                ):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Slurm nodes did not come up: {self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self) -> str:
        parts = []
        for path in sorted(self.folder.glob("*.out")) + sorted(self.folder.glob("*.log")):
            with contextlib.suppress(OSError):
                parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-2000:])
        return "\n".join(parts)

    def stop(self) -> None:
        """Everything start made, whatever state it got to."""
        for node in self.nodes:
            with contextlib.suppress(OSError):
                for pid in self.processes_in(node):
                    procfs.kill(procfs.tree(pid))
        for proc in reversed(self.daemons):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for node in self.nodes:
            _ip("link", "del", node.veth, check=False)
            _ip("netns", "del", node.netns, check=False)
        if self.bridge:
            _ip("link", "del", self.bridge, check=False)
        if self.lock_fd is not None:
            for suffix in (".json", ".lock"):
                with contextlib.suppress(FileNotFoundError):
                    (REGISTRY / f"{self.tag}{suffix}").unlink()
            os.close(self.lock_fd)
            self.lock_fd = None

    def _claim(self, node_count: int) -> None:
        """Hold this cluster's lock and record the names it will make, before making them."""
        REGISTRY.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(REGISTRY / f"{self.tag}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.lock_fd = fd
        self.bridge = f"chb{self.tag}"
        self._planned = [
            (f"chn{self.tag}{i + 1}", f"chv{self.tag}{i + 1}") for i in range(node_count)
        ]
        self._record()

    def _record(self) -> None:
        daemons = [
            [proc.pid, procfs.start_time(proc.pid)] for proc in self.daemons if proc.poll() is None
        ]
        record = {"bridge": self.bridge, "nodes": self._planned, "daemons": daemons}
        tmp = REGISTRY / f".{self.tag}.json"
        tmp.write_text(json.dumps(record))
        tmp.replace(REGISTRY / f"{self.tag}.json")


def sweep_abandoned() -> None:
    """Remove what clusters of sessions that were killed outright left behind."""
    if not REGISTRY.is_dir():
        return
    for lock in REGISTRY.glob("*.lock"):
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its session still runs
            record_path = lock.with_suffix(".json")
            with contextlib.suppress(OSError, ValueError):
                _remove_recorded(json.loads(record_path.read_text()))
            record_path.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _remove_recorded(record: dict[str, Any]) -> None:
    for netns, _ in record["nodes"]:
        done = subprocess.run(
            ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
        )
        for pid in done.stdout.split():
            procfs.kill(procfs.tree(int(pid)))
    for pid, started in record["daemons"]:
        # Only the very process recorded, not one that got its pid since.
        if started is not None and procfs.start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    for netns, veth in record["nodes"]:
        _ip("link", "del", veth, check=False)
        _ip("netns", "del", netns, check=False)
    _ip("link", "del", record["bridge"], check=False)


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that nothing on this machine routes or addresses."""
    done = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, check=True
    )
    used = []
    for line in done.stdout.splitlines():
        word = line.split()[0] if line.split() else ""
        if word[0:1].isdigit():
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(word, strict=False))
    for _ in range(100):
        candidate = ipaddress.IPv4Network(
            f"10.{secrets.randbelow(200) + 50}.{secrets.randbelow(254)}.0/24"
        )
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise RuntimeError("no free private subnet for the test cluster")
