"""When quota inputs kept in a project's row may be used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calchub.projects.quota_inputs import QuotaInputs, _current

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _kept(**changes: Any) -> dict[str, Any]:
    return {
        "version": 3,
        "until": None,
        "upgrades": [{"memory": 100}],
        "license_quotas": [{"ram": 2}],
        **changes,
    }


def test_inputs_stamped_with_the_rows_version_are_used() -> None:
    assert _current(_kept(), 3, NOW) == QuotaInputs([{"memory": 100}], [{"ram": 2}])


def test_inputs_of_an_earlier_version_are_not() -> None:
    assert _current(_kept(), 4, NOW) is None


def test_inputs_are_used_until_a_license_activates_or_expires() -> None:
    later = (NOW + timedelta(seconds=1)).isoformat()
    assert _current(_kept(until=later), 3, NOW) is not None
    assert _current(_kept(until=NOW.isoformat()), 3, NOW) is None


@pytest.mark.parametrize(
    "kept",
    [
        None,
        [],
        _kept(until="not a time"),
        _kept(upgrades={"memory": 1}),
        _kept(license_quotas=None),
        {"upgrades": [], "license_quotas": []},
    ],
)
def test_anything_malformed_is_read_afresh(kept: Any) -> None:
    assert _current(kept, 3, NOW) is None
