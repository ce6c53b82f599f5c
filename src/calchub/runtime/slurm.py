"""Projects on a cluster managed by Slurm: each running project is one batch job whose only
task is the relay (calchub.runtime.agent.relay), which starts the project's sandbox on the
node Slurm picked (the same bubblewrap sandbox and uid as the local runtime) and serves its
agent over TCP with TLS. Memory and cores go to Slurm (`--mem`, `--cpus-per-task`), whose
cgroup plugin enforces them where the cluster has it; the agent adds the same rlimits as a
local sandbox without cgroups.

Everything lives on storage every node and every hub sees (an operator's NFS, say):

    projects_root/<id>/          the project's home (its uid, 0700); projects_root itself
                                 must be traversable (o+x) by project uids
    runtime_root/.agent/<ver>/   the agent package (world-readable)
    runtime_root/.hub.key        the hubs' shared key (root only), from which each start's
                                 token is derived
    runtime_root/<id>/           root only: job.json (job id, the start's nonce), relay.json
                                 (what the job runs), address.json (written by the relay:
                                 host, port, certificate fingerprint), job.log, lock

The hub whose start sees address.json records the address in the database (the runtime's
address book); hubs route calls from that record, checked against the start's nonce in
job.json, and read address.json only when the record is missing (a start recorded nowhere
else, such as one from before the record existed). The token is HMAC(key, project id and
nonce), so it is never stored anywhere; the relay holds only its SHA-256 digest. A project's
state is its job's state (`scontrol show job`), so a hub that restarts has nothing to adopt
beyond reading the folder and the record, and two hubs agree without talking to each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from calchub.runtime import channel, sandbox
from calchub.runtime.base import (
    MIB,
    AgentAddress,
    AgentAddressBook,
    ProjectSpec,
    RuntimeFailure,
    RuntimeOptions,
    RuntimeStatus,
    SandboxUnavailable,
)
from calchub.runtime.install import install_agent
from calchub.runtime.local import LocalRuntime, _check_id, _check_spec

log = logging.getLogger(__name__)

ACTIVE = frozenset({"PENDING", "CONFIGURING", "RUNNING", "RESIZING", "SUSPENDED"})
SLURM_TIMEOUT_S = 30.0
KEY_BYTES = 32
RELAY_FD = 3  # calchub.runtime.agent.relay.AGENT_FD


@dataclass(frozen=True)
class JobInfo:
    state: str  # Slurm's job state, or "GONE" once the controller forgot the job
    reason: str
    node: str
    exit_code: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def describe(self) -> str:
        if self.state == "GONE":
            return "its cluster job is gone"
        detail = f"its cluster job ended: {self.state}"
        if self.node:
            detail += f" on {self.node}"
        if self.reason and self.reason != "None":
            detail += f" ({self.reason})"
        if self.exit_code and self.exit_code != "0:0":
            detail += f", exit code {self.exit_code}"
        return detail


class SlurmRuntime(LocalRuntime):
    """Runs each project as a Slurm job. `hub_address` is an address of the hubs' network
    that nodes route towards (the relay advertises its own address on that route);
    `partition` and `sbatch_args` go to sbatch; `node_socket_root` is a node-local folder
    for the agents' sockets; `slurm_bin` is where sbatch, scancel and scontrol are, and
    `slurm_conf` the cluster's slurm.conf when it is not the default one."""

    def __init__(
        self,
        projects_root: Path,
        runtime_root: Path,
        *,
        hub_address: str,
        partition: str = "",
        sbatch_args: tuple[str, ...] = (),
        node_socket_root: Path = Path("/run/calchub-node"),
        slurm_bin: str = "",
        slurm_conf: str = "",
        io_timeout_s: float = 60.0,
        start_timeout_s: float = 120.0,
        nested_pidns: bool = True,
        disk: str = "none",
        addresses: AgentAddressBook | None = None,
        quiet_after_s: float = 30.0,
    ) -> None:
        super().__init__(
            projects_root,
            runtime_root,
            use_cgroups=False,
            nested_pidns=nested_pidns,
            io_timeout_s=io_timeout_s,
            start_timeout_s=start_timeout_s,
            disk=disk,
            quiet_after_s=quiet_after_s,
        )
        self.hub_address = hub_address
        self.partition = partition
        self.sbatch_args = tuple(sbatch_args)
        self.node_socket_root = Path(node_socket_root)
        self.slurm_bin = slurm_bin
        self.slurm_conf = slurm_conf
        self._key: bytes | None = None
        self.addresses = addresses
        # The address book's entries this hub has read, by project: used while the start's
        # nonce (job.json) still names them.
        self._addresses_known: dict[str, AgentAddress] = {}
        self._copies: LocalRuntime | None = None

    @classmethod
    def from_options(cls, options: RuntimeOptions) -> SlurmRuntime:
        """Settings from CALCHUB_SLURM_* environment variables (see README)."""
        env = os.environ
        return cls(
            options.projects_root,
            options.runtime_root,
            hub_address=env.get("CALCHUB_SLURM_HUB_ADDRESS", ""),
            partition=env.get("CALCHUB_SLURM_PARTITION", ""),
            sbatch_args=tuple(env.get("CALCHUB_SLURM_SBATCH_ARGS", "").split()),
            node_socket_root=Path(env.get("CALCHUB_SLURM_NODE_SOCKETS", "/run/calchub-node")),
            slurm_bin=env.get("CALCHUB_SLURM_BIN", ""),
            slurm_conf=env.get("SLURM_CONF", ""),
            disk=options.disk,
            addresses=options.addresses,
            quiet_after_s=options.quiet_after_s,
        )

    # -- availability and layout

    def unavailable_reason(self) -> str | None:
        check = self.check_available()
        return None if check.available else f"projects cannot run on the cluster: {check.reason}"

    def network_problem(self) -> str | None:
        return None

    def check_available(self) -> sandbox.SandboxCheck:
        # Hubs sandbox too: they read stopped projects in one-shot sandboxes.
        host = sandbox.check_host()
        if not host.available:
            return host
        if not self.hub_address:
            return sandbox.SandboxCheck(False, "no hub address for the nodes to route to")
        if self._disk_wanted == "image":
            # Homes are folders on the shared storage; images would be mounted on nodes.
            return sandbox.SandboxCheck(False, "project_disk=image is not available on Slurm")
        if self._disk_wanted == "auto":
            log.warning(
                "project homes on the cluster are plain folders: disk quotas are "
                "checked before writes and copies but do not bind commands"
            )
        for tool in ("sbatch", "scancel", "scontrol"):
            if shutil.which(self._tool(tool)) is None:
                return sandbox.SandboxCheck(False, f"{tool} is not installed (slurm-client)")
        self._prepare_roots()
        for folder in (self.projects_root, self.runtime_root):
            if problem := sandbox.traversal_problem(folder):
                return sandbox.SandboxCheck(False, problem)
        return sandbox.SandboxCheck(True, "ok")

    def _prepare_roots(self) -> None:
        for folder in (self.projects_root, self.runtime_root, self._mounts_root):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Traversable, not listable: project uids reach their own home and the agent
            # (and, for a one-shot reader on a hub, its home's mount).
            os.chmod(folder, 0o711)  # noqa: S103
        self._agent_home = install_agent(self.runtime_root)
        self._key = _hub_key(self.runtime_root / ".hub.key")

    def _prepare(self) -> None:
        if self._prepared:
            return
        check = self.check_available()
        if not check.available:
            raise SandboxUnavailable(check.reason)
        self._prepared = True

    def _tool(self, name: str) -> str:
        return os.path.join(self.slurm_bin, name) if self.slurm_bin else name

    def _token(self, project_id: str, nonce: str) -> bytes:
        assert self._key is not None, "the key is read before any start"
        return hmac.new(self._key, f"{project_id}:{nonce}".encode(), hashlib.sha256).digest()

    # -- Slurm

    async def _slurm(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return await asyncio.to_thread(
            subprocess.run,
            [self._tool(argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=SLURM_TIMEOUT_S,
            env=env,
        )

    async def job_info(self, job_id: str) -> JobInfo:
        done = await self._slurm("scontrol", "-o", "show", "job", job_id)
        if done.returncode != 0:
            if "Invalid job id" in done.stderr:
                return _GONE
            raise RuntimeFailure(f"scontrol failed: {done.stderr.strip()[:500]}")
        return next(iter(_parse_jobs(done.stdout).values()), _GONE)

    async def all_jobs(self) -> dict[str, JobInfo]:
        """Every job the controller still knows (finished ones for MinJobAge), by id."""
        done = await self._slurm("scontrol", "-o", "show", "job")
        if done.returncode != 0:
            raise RuntimeFailure(f"scontrol failed: {done.stderr.strip()[:500]}")
        return _parse_jobs(done.stdout)

    # -- what is recorded of a project

    def _job_path(self, project_id: str) -> Path:
        return self._rundir(project_id) / "job.json"

    def _record(self, project_id: str) -> dict[str, Any] | None:
        return _read_json(self._job_path(project_id))

    def _address_file(self, project_id: str, nonce: str) -> dict[str, Any] | None:
        found = _read_json(self._rundir(project_id) / "address.json")
        if found is None or found.get("nonce") != nonce:
            return None
        return found

    async def _address(self, project_id: str, nonce: str) -> dict[str, Any] | None:
        """Where the start with this nonce answers: the database's record (kept by this hub
        while the nonce is the same), else the relay's file."""
        if self.addresses is not None:
            known = self._addresses_known.get(project_id)
            if known is None or known.nonce != nonce:
                known = await self.addresses.get(project_id)
                if known is not None and known.nonce == nonce:
                    self._addresses_known[project_id] = known
            if known is not None and known.nonce == nonce:
                return {"host": known.host, "port": known.port, "fingerprint": known.fingerprint}
        return self._address_file(project_id, nonce)

    async def _remember(
        self, project_id: str, record: dict[str, Any], address: dict[str, Any]
    ) -> None:
        if self.addresses is None:
            return
        known = AgentAddress(
            project_id=project_id,
            job_id=str(record["job_id"]),
            nonce=str(record["nonce"]),
            host=str(address["host"]),
            port=int(address["port"]),
            fingerprint=str(address["fingerprint"]),
        )
        await self.addresses.put(known)
        self._addresses_known[project_id] = known

    async def _forget_address(self, project_id: str, nonce: str | None = None) -> None:
        known = self._addresses_known.get(project_id)
        if known is not None and (nonce is None or known.nonce == nonce):
            del self._addresses_known[project_id]
        if self.addresses is None:
            return
        if nonce is not None:
            # Asked on every status of an ended start: a read spares a write when done.
            recorded = await self.addresses.get(project_id)
            if recorded is None or recorded.nonce != nonce:
                return
        await self.addresses.forget(project_id, nonce)

    # -- lifecycle

    async def start(self, spec: ProjectSpec) -> None:
        _check_spec(spec, True)
        self._prepare()
        async with self._lock(spec.project_id):
            record = self._record(spec.project_id)
            if record is not None:
                info = await self.job_info(record["job_id"])
                if info.active:
                    await self._wait_address(spec.project_id, record)
                    return
            await self._submit(spec)

    async def stop(self, project_id: str) -> None:
        _check_id(project_id)
        if not self._rundir(project_id).is_dir():
            return
        async with self._lock(project_id):
            record = self._record(project_id)
            if record is not None:
                await self._cancel(record["job_id"])
            self._clear(project_id)
            await self._forget_address(project_id)

    async def status(self, project_id: str) -> RuntimeStatus:
        _check_id(project_id)
        record = self._record(project_id)
        if record is None:
            return _STOPPED
        return await self._status_of(project_id, record, await self.job_info(record["job_id"]))

    async def statuses(self, project_ids: list[str]) -> dict[str, RuntimeStatus]:
        """All at once, with one question to the controller however many projects run."""
        records = {}
        for project_id in project_ids:
            _check_id(project_id)
            records[project_id] = self._record(project_id)
        jobs = await self.all_jobs() if any(records.values()) else {}
        found = {}
        for project_id, record in records.items():
            found[project_id] = (
                _STOPPED
                if record is None
                else await self._status_of(project_id, record, jobs.get(record["job_id"], _GONE))
            )
        return found

    async def _status_of(
        self, project_id: str, record: dict[str, Any], info: JobInfo
    ) -> RuntimeStatus:
        if info.state != "RUNNING":
            if not info.active:
                # The start ended: its recorded address must not be used again.
                await self._forget_address(project_id, record["nonce"])
        elif await self._address(project_id, record["nonce"]) is not None:
            return RuntimeStatus(
                running=True,
                pid=None,
                memory_bytes=None,
                started_at=datetime.fromisoformat(record["started_at"]),
            )
        # A clean end (the agent's idle timeout) is no failure to report, and while Slurm
        # is still ending the job (COMPLETING) how it ended is not known yet.
        clean = info.state == "COMPLETED" and info.exit_code == "0:0"
        pending = info.active or info.state == "COMPLETING"
        reason = None if pending or clean else info.describe()
        return RuntimeStatus(
            running=False, pid=None, memory_bytes=None, started_at=None, reason=reason
        )

    async def touch(self, project_id: str) -> None:
        _check_id(project_id)
        record = self._record(project_id)
        if record is None:
            return
        with contextlib.suppress(RuntimeFailure):
            endpoint = await self._endpoint_of(project_id, record)
            await channel.call(endpoint, {"op": "touch"}, wait_s=5)

    async def close(self) -> None:
        channel.close_kept()
        if self._copies is not None:
            await self._copies.close()
            self._copies = None

    async def _submit(self, spec: ProjectSpec) -> None:
        project_id = spec.project_id
        rundir = self._rundir(project_id)
        self._clear(project_id)
        rundir.mkdir(mode=0o700, exist_ok=True)
        home = self._prepare_home(spec)
        nonce = secrets.token_hex(16)
        relay = self.relay_config(spec, home, nonce)
        _write_private(rundir / "relay.json", json.dumps(relay))
        assert self._agent_home is not None, "the agent is installed before any start"
        launcher = self._agent_home / sandbox.AGENT_LAUNCHER
        script = (
            f"#!/bin/sh\nexec {sandbox.SYSTEM_PYTHON} -I {launcher} relay {rundir / 'relay.json'}\n"
        )
        _write_private(rundir / "job.sh", script)
        argv = [
            "sbatch", "--parsable", "--no-requeue", "--export=NONE",
            f"--job-name=calchub-{project_id}", f"--output={rundir / 'job.log'}",
            "--chdir=/", "--ntasks=1",
            f"--cpus-per-task={max(1, math.ceil(spec.quota.cores))}",
            f"--mem={spec.quota.memory_mb}M",
        ]  # fmt: skip
        if self.partition:
            argv.append(f"--partition={self.partition}")
        argv += [*self.sbatch_args, str(rundir / "job.sh")]
        done = await self._slurm(*argv)
        job_id = done.stdout.strip().split(";")[0]
        if done.returncode != 0 or not job_id.isdigit():
            raise SandboxUnavailable(f"sbatch refused the project: {done.stderr.strip()[:500]}")
        record = {
            "job_id": job_id,
            "nonce": nonce,
            "uid": spec.uid,
            "started_at": datetime.now(UTC).isoformat(),
        }
        _write_private(self._job_path(project_id), json.dumps(record))
        try:
            await self._wait_address(project_id, record)
        except BaseException:
            await self._cancel(job_id)
            raise
        log.info("started project %s as job %s", project_id, job_id)

    def relay_config(self, spec: ProjectSpec, home: Path, nonce: str) -> dict[str, Any]:
        """What a start's relay is told: the sandbox to run and whom to let in."""
        # No network for projects on nodes yet: bubblewrap would share the node's own
        # namespace, unfiltered, where the local runtime builds one walled in by pasta.
        spec = dataclasses.replace(spec, quota=dataclasses.replace(spec.quota, network=False))
        config = self._agent_config(spec, RELAY_FD, frozenset())
        return {
            "project_id": spec.project_id,
            "rundir": str(self._rundir(spec.project_id)),
            "sock_dir": str(self.node_socket_root / spec.project_id),
            "argv": self._agent_command(spec, home, config),
            "token_digest": hashlib.sha256(self._token(spec.project_id, nonce)).hexdigest(),
            "nonce": nonce,
            "route_to": self.hub_address,
            "start_timeout_s": self._start_timeout_s,
        }

    async def _wait_address(self, project_id: str, record: dict[str, Any]) -> None:
        """Until the job's relay published its address (or the job ended), which is then
        recorded in the database."""
        if await self._address(project_id, record["nonce"]) is not None:
            return
        deadline = time.monotonic() + self._start_timeout_s
        checked = 0.0
        while (address := self._address_file(project_id, record["nonce"])) is None:
            now = time.monotonic()
            if now > deadline:
                raise RuntimeFailure(
                    f"project did not start within {self._start_timeout_s:g} seconds"
                )
            if now - checked > 1.0:
                checked = now
                info = await self.job_info(record["job_id"])
                if not info.active and self._address_file(project_id, record["nonce"]) is None:
                    raise SandboxUnavailable(f"the project could not start: {info.describe()}")
            await asyncio.sleep(0.05)
        await self._remember(project_id, record, address)

    async def _cancel(self, job_id: str) -> None:
        await self._slurm("scancel", job_id)
        deadline = time.monotonic() + SLURM_TIMEOUT_S
        # Until its processes are gone too (COMPLETING is Slurm still ending them).
        while (info := await self.job_info(job_id)).active or info.state == "COMPLETING":
            if time.monotonic() > deadline:
                log.error("job %s did not end after scancel", job_id)
                return
            await asyncio.sleep(0.1)

    def _clear(self, project_id: str) -> None:
        rundir = self._rundir(project_id)
        for name in ("job.json", "relay.json", "job.sh", "address.json", "job.log"):
            with contextlib.suppress(FileNotFoundError):
                (rundir / name).unlink()

    # -- talking to the agent

    async def _endpoint_of(
        self, project_id: str, record: dict[str, Any]
    ) -> channel.NetworkEndpoint:
        address = await self._address(project_id, record["nonce"])
        if address is None:
            raise channel.AgentUnreachable("project is not running")
        return channel.NetworkEndpoint(
            host=str(address["host"]),
            port=int(address["port"]),
            fingerprint=str(address["fingerprint"]),
            token=self._token(project_id, record["nonce"]),
        )

    async def _endpoint(self, spec: ProjectSpec, *, fresh: bool = False) -> channel.Endpoint:
        self._prepare()
        record = self._record(spec.project_id)
        # The published address is trusted until it stops answering; then the job's state
        # decides: still running (a node the controller has not yet given up on) fails the
        # call, ended starts the project again.
        if (
            record is not None
            and await self._address(spec.project_id, record["nonce"]) is not None
            and (not fresh or (await self.job_info(record["job_id"])).active)
        ):
            return await self._endpoint_of(spec.project_id, record)
        await self.start(spec)
        record = self._record(spec.project_id)
        if record is None:
            raise RuntimeFailure("the project did not start")
        return await self._endpoint_of(spec.project_id, record)

    async def _peek(
        self, spec: ProjectSpec, header: dict[str, Any], *, max_payload: int = 0
    ) -> tuple[dict[str, Any], bytes]:
        """A running project's agent answers over the network; a stopped project is read
        where it lies, on the shared folder, by the local runtime's one-shot reader on this
        hub (so hubs need bubblewrap too)."""
        _check_spec(spec, True)
        self._prepare()
        record = self._record(spec.project_id)
        if record is not None and await self._address(spec.project_id, record["nonce"]) is not None:
            with contextlib.suppress(channel.AgentUnreachable):
                reply, data = await channel.call(
                    await self._endpoint_of(spec.project_id, record),
                    header,
                    wait_s=self._io_timeout_s,
                    max_payload=max_payload,
                )
                return self._checked(spec, reply), data
        return await super()._peek(spec, header, max_payload=max_payload)

    async def _ensure_running(self, spec: ProjectSpec) -> str:
        raise RuntimeFailure("this operation is not available on the Slurm runtime")

    async def copy_path(
        self,
        src: ProjectSpec,
        src_path: str,
        dst: ProjectSpec,
        dst_path: str,
        **options: Any,
    ) -> None:
        """Both homes lie on the shared folder this hub sees, so the copy runs here, as the
        local runtime's does (rsync as the target's uid from a sandbox of the source, the
        target's quota checked first), in sandboxes on this hub that end with the copy."""
        _check_spec(src, True)
        _check_spec(dst, True)
        self._prepare()
        copier = self._copier()
        plain = {
            spec.project_id: dataclasses.replace(
                spec, quota=dataclasses.replace(spec.quota, network=False)
            )
            for spec in (src, dst)
        }
        try:
            await copier.copy_path(
                plain[src.project_id], src_path, plain[dst.project_id], dst_path, **options
            )
        finally:
            for project_id in plain:
                await copier.stop(project_id)

    def _copier(self) -> LocalRuntime:
        """A local runtime of this hub process's own for copies: its sandboxes' sockets and
        locks are this process's, so no other hub adopts or stops them."""
        if self._copies is None:
            # Short: the sockets' paths must fit sun_path.
            host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]
            root = self.runtime_root / ".c" / f"{host}{os.getpid()}"
            root.parent.mkdir(mode=0o711, exist_ok=True)
            os.chmod(root.parent, 0o711)  # noqa: S103 - traversable, as the roots are
            try:
                self._copies = LocalRuntime(
                    self.projects_root,
                    root,
                    use_cgroups=False,
                    nested_pidns=self._nested_pidns,
                    io_timeout_s=self._io_timeout_s,
                )
            except ValueError as exc:
                raise SandboxUnavailable(f"copies cannot run on this hub: {exc}") from None
        return self._copies


_STOPPED = RuntimeStatus(running=False, pid=None, memory_bytes=None, started_at=None)
_GONE = JobInfo("GONE", "", "", "")


def _parse_jobs(text: str) -> dict[str, JobInfo]:
    """`scontrol -o show job` output: one line per job, `Key=Value` fields."""
    jobs = {}
    for line in text.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "JobId" in fields:
            jobs[fields["JobId"]] = JobInfo(
                state=fields.get("JobState", "UNKNOWN"),
                reason=fields.get("Reason", ""),
                node=fields.get("BatchHost", "") or fields.get("NodeList", ""),
                exit_code=fields.get("ExitCode", ""),
            )
    return jobs


def _hub_key(path: Path) -> bytes:
    """The hubs' shared key, made by the first hub to need it."""
    if not path.exists():
        # Written aside and linked into place: a hub never reads a half-written key.
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SandboxUnavailable(f"{path} is not a key of {KEY_BYTES} bytes")
    return key


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


__all__ = ["MIB", "JobInfo", "SlurmRuntime"]
