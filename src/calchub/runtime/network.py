"""A project's own network: a network namespace with outbound NAT through pasta.

A project whose quota grants network runs in a namespace made by root before the sandbox
starts. pasta (Debian: passt) connects it to the outside world through ordinary sockets of
the host, IPv4 only, with no port forwarded either way and no mapping of the gateway to the
host, so the host's loopback is not reachable from inside. Routes that only root in the
host's namespace may change (the project has no rights over this namespace) refuse the
operator's denied ranges and every address of the host; the most specific route wins, so an
allowed range inside a denied one is reachable again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from calchub.runtime import reaping
from calchub.runtime.base import NetworkRules, RuntimeFailure, SandboxUnavailable

NETNS_FILE = "netns"
PASTA_PID_FILE = "pasta.pid"
_TIMEOUT_S = 30


def parse_ranges(text: str, setting: str) -> tuple[str, ...]:
    """A comma or space separated list of IPv4 ranges; ValueError names the bad entry."""
    ranges = []
    for entry in text.replace(",", " ").split():
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{setting}: {entry!r} is not an IPv4 address range") from None
        if network.version != 4:
            raise ValueError(f"{setting}: {entry!r} is not an IPv4 address range")
        ranges.append(str(network))
    return tuple(ranges)


def pasta_problem() -> str | None:
    if shutil.which("pasta") is None:
        return "pasta is not installed (Debian: apt-get install passt); networked projects need it"
    return None


def host_addresses() -> list[str]:
    """Every IPv4 address of the host's own interfaces."""
    out = _run(["ip", "-j", "-4", "addr", "show"])
    found = []
    for link in json.loads(out or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and isinstance(info.get("local"), str):
                found.append(info["local"])
    return found


def set_up(rundir: Path, rules: NetworkRules) -> Path:
    """Make the project's namespace (bound to a file in its runtime folder), connect it
    through pasta and apply the rules; the namespace file to enter. Undone by tear_down."""
    if problem := pasta_problem():
        raise SandboxUnavailable(problem)
    tear_down(rundir)  # leftovers of a crash
    netns = rundir / NETNS_FILE
    netns.touch(mode=0o600)
    try:
        _run(["unshare", f"--net={netns}", "true"])
        # --runas 0: pasta must enter a namespace owned by the host's user namespace.
        _run([
            "pasta", "--quiet", "--runas", "0", "--netns", str(netns), "--config-net",
            "--ipv4-only", "--no-map-gw", "-t", "none", "-u", "none", "-T", "none",
            "-U", "none", "--pid", str(rundir / PASTA_PID_FILE),
        ])  # fmt: skip
        inside = ["nsenter", f"--net={netns}", "--"]
        routes = json.loads(_run([*inside, "ip", "-j", "-4", "route", "show", "default"]))
        if not routes:
            raise RuntimeFailure("the project's network has no route out")
        gateway, device = routes[0].get("gateway"), routes[0].get("dev")
        batch = []
        for cidr in [*rules.deny, *(f"{a}/32" for a in host_addresses())]:
            batch.append(f"route replace prohibit {_range(cidr)}")
        for cidr in rules.allow:
            via = f"via {gateway} " if gateway else ""
            batch.append(f"route replace {_range(cidr)} {via}dev {device}")
        _run([*inside, "ip", "-batch", "-"], "\n".join(batch) + "\n")
    except BaseException:
        tear_down(rundir)
        raise
    return netns


def tear_down(rundir: Path) -> None:
    """Stop the project's pasta and release its namespace; never fails."""
    pid_file = rundir / PASTA_PID_FILE
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().strip())
        pidfd = os.pidfd_open(pid)
        try:
            if Path(f"/proc/{pid}/comm").read_text().split(".")[0] in ("pasta", "passt"):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                # pasta runs in the background (its launcher exits): a subreaper hub that
                # started it is its parent, and reaps it (see reaping.py).
                reaping.reap_when_ended(pidfd, _TIMEOUT_S)
        finally:
            os.close(pidfd)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    netns = rundir / NETNS_FILE
    if netns.exists():
        # Detach: pasta may still hold the namespace for a moment while it exits.
        subprocess.run(["umount", "-l", str(netns)], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            netns.unlink()


def _range(cidr: str) -> str:
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise RuntimeFailure(f"{cidr!r} is not an IPv4 address range") from None
    if network.version != 4:
        raise RuntimeFailure(f"{cidr!r} is not an IPv4 address range")
    return str(network)


def _run(argv: list[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeFailure(f"setting up the project's network failed: {exc}") from exc
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit code {done.returncode}"
        raise RuntimeFailure(f"setting up the project's network failed ({argv[0]}): {detail}")
    return done.stdout
