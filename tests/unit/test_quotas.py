from __future__ import annotations

from calchub.projects.quotas import effective_quota
from calchub.runtime import Quota


def test_upgrades_and_settings_add_up() -> None:
    base = Quota(
        memory_mb=1000, cores=1, disk_mb=3000, processes=256, network=False, idle_timeout_s=1800
    )
    quota = effective_quota(
        base,
        {"memory": 500, "network": 1},
        [{"memory": 1000, "cores": 1, "disk_quota": 2000, "mintime": 3600}, {"cores": "0.5"}],
    )
    assert quota == Quota(
        memory_mb=2500, cores=2.5, disk_mb=5000, processes=256, network=True, idle_timeout_s=5400
    )


def test_junk_and_negative_values_are_ignored() -> None:
    base = Quota()
    assert effective_quota(base, {"memory": -5000, "cores": "lots"}, [{"network": 0}]) == base
