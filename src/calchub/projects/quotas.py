"""A project's effective quota: site defaults, plus admin settings, plus members' and
licenses' upgrades, raised to at least what its licenses' quotas grant."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from calchub.runtime import Quota


def _number(value: Any) -> float:
    """A finite number, or 0 for anything else (junk must not stop a project from starting)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def default_quota(values: dict[str, str]) -> Quota:
    """The quota of a project without upgrades, from the site settings' values."""
    return Quota(
        memory_mb=int(values["default_quota_memory_mb"]),
        cores=float(values["default_quota_cores"]),
        disk_mb=int(values["default_quota_disk_mb"]),
        processes=int(values["default_quota_processes"]),
        network=values["default_quota_network"] == "yes",
        idle_timeout_s=int(values["default_quota_idle_timeout_s"]),
    )


def effective_quota(
    base: Quota,
    settings: dict[str, Any] | None,
    upgrades: list[dict[str, Any]],
    license_quotas: Sequence[dict[str, Any]] = (),
) -> Quota:
    """CoCalc's upgrade fields: memory (MB), cores, disk_quota (MB), mintime (s), network.
    `upgrades` are members' and licenses' upgrades; `license_quotas` the `quota` maps of the
    licenses that count (see `licensed_quota`)."""
    return licensed_quota(_upgraded(base, settings, upgrades), license_quotas)


def _upgraded(
    base: Quota, settings: dict[str, Any] | None, upgrades: list[dict[str, Any]]
) -> Quota:
    extra: dict[str, float] = {"memory": 0, "cores": 0, "disk_quota": 0, "mintime": 0}
    network = base.network
    for contribution in [settings or {}, *upgrades]:
        for name in extra:
            extra[name] += max(0.0, _number(contribution.get(name)))
        network = network or bool(_number(contribution.get("network")))
    return Quota(
        memory_mb=base.memory_mb + int(extra["memory"]),
        cores=base.cores + extra["cores"],
        disk_mb=base.disk_mb + int(extra["disk_quota"]),
        processes=base.processes,
        network=network,
        idle_timeout_s=base.idle_timeout_s + int(extra["mintime"]),
    )


GB_IN_MB = 1000  # CoCalc's license quotas count GB as 1000 MB, as its upgrades do


def licensed_quota(quota: Quota, license_quotas: Sequence[dict[str, Any]]) -> Quota:
    """A license's `quota` is what a project using it gets in total (ram and disk in GB,
    cpu in cores; dedicated ram and cpu count too): several licenses add up, and the project
    keeps its own quota where that is larger. Any license quota includes network access
    (as in CoCalc); `always_running` turns off the idle timeout."""
    if not license_quotas:
        return quota
    ram = sum(_number(q.get("ram")) + _number(q.get("dedicated_ram")) for q in license_quotas)
    cpu = sum(_number(q.get("cpu")) + _number(q.get("dedicated_cpu")) for q in license_quotas)
    disk = sum(_number(q.get("disk")) for q in license_quotas)
    always_running = any(q.get("always_running") is True for q in license_quotas)
    return Quota(
        memory_mb=max(quota.memory_mb, int(max(0.0, ram) * GB_IN_MB)),
        cores=max(quota.cores, cpu),
        disk_mb=max(quota.disk_mb, int(max(0.0, disk) * GB_IN_MB)),
        processes=quota.processes,
        network=True,
        idle_timeout_s=0 if always_running else quota.idle_timeout_s,
    )
