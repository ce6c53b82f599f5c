"""A project's effective quota: site defaults, plus admin settings, plus members' upgrades."""

from __future__ import annotations

from typing import Any

from calchub.runtime import Quota


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


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
    base: Quota, settings: dict[str, Any] | None, upgrades: list[dict[str, Any]]
) -> Quota:
    """CoCalc's upgrade fields: memory (MB), cores, disk_quota (MB), mintime (s), network."""
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
