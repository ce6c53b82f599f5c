"""What applied site licenses add to a project's quota."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calchub.licenses.terms import in_force
from calchub.projects.quotas import effective_quota, licensed_quota
from calchub.runtime import Quota

BASE = Quota(
    memory_mb=1000, cores=1, disk_mb=3000, processes=256, network=False, idle_timeout_s=1800
)


def test_license_upgrades_add_up_with_members_upgrades() -> None:
    member = {"memory": 500}
    license_upgrades = {"memory": 2000, "cores": 1.5, "disk_quota": 1000, "network": 1}
    quota = effective_quota(BASE, None, [member, license_upgrades])
    assert quota == Quota(
        memory_mb=3500, cores=2.5, disk_mb=4000, processes=256, network=True, idle_timeout_s=1800
    )


def test_a_license_quota_is_a_total_the_project_gets_at_least() -> None:
    quota = effective_quota(BASE, None, [], [{"ram": 4, "cpu": 2, "disk": 10}])
    assert quota == Quota(
        memory_mb=4000, cores=2, disk_mb=10_000, processes=256, network=True, idle_timeout_s=1800
    )


def test_own_quota_wins_where_it_is_larger() -> None:
    upgraded = effective_quota(BASE, {"memory": 7000}, [], [{"ram": 2, "cpu": 3}])
    assert (upgraded.memory_mb, upgraded.cores, upgraded.disk_mb) == (8000, 3, 3000)


def test_several_license_quotas_add_up_with_dedicated_resources() -> None:
    quota = licensed_quota(
        BASE,
        [
            {"ram": 1, "cpu": 1, "disk": 2, "dedicated_ram": 2, "member": True},
            {"ram": 2, "dedicated_cpu": 2, "disk": 3, "user": "academic"},
        ],
    )
    assert (quota.memory_mb, quota.cores, quota.disk_mb) == (5000, 3, 5000)


def test_always_running_turns_the_idle_timeout_off() -> None:
    assert licensed_quota(BASE, [{"ram": 1, "always_running": True}]).idle_timeout_s == 0
    assert licensed_quota(BASE, [{"ram": 1, "always_running": False}]).idle_timeout_s == 1800


def test_no_license_changes_nothing() -> None:
    assert licensed_quota(BASE, []) == BASE
    assert effective_quota(BASE, None, [], []) == BASE


def test_junk_in_a_license_is_ignored() -> None:
    quota = licensed_quota(
        BASE, [{"ram": "lots", "cpu": float("inf"), "disk": -50, "always_running": "yes"}]
    )
    assert quota == Quota(
        memory_mb=1000, cores=1, disk_mb=3000, processes=256, network=True, idle_timeout_s=1800
    )
    upgraded = effective_quota(BASE, None, [{"memory": "nan", "cores": "1e999"}])
    assert upgraded == BASE


def test_a_license_counts_between_activation_and_expiry() -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    day = timedelta(days=1)
    assert in_force(now - day, None, now)
    assert in_force(now - day, now + day, now)
    assert in_force(now, now + day, now)
    assert not in_force(None, None, now)  # never activated
    assert not in_force(now + day, None, now)  # not yet
    assert not in_force(now - 2 * day, now - day, now)  # expired
    assert not in_force(now - day, now, now)  # expires this instant
