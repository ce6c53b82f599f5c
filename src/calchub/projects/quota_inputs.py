"""What a project's quota takes from rows other than its own: its members' upgrades and its
licenses' terms. Reading them costs two more queries on every exec and file call, so they
are kept in the project's row (`quota_inputs`), stamped with the row's `quota_version`.

Database triggers (migration 0017) move `quota_version` whenever a membership, the applied
licenses or a license's terms change, whoever makes the change. The row that every call
reads anyway (project, membership, quota inputs: one query) then no longer matches its
stamp, and the inputs are read afresh on that very call, on every hub. Inputs that depend on
time (a license activating or expiring) are stamped with that moment and not used past it;
licenses with a run limit depend on other projects' states and are never kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.db.counters import missing_triggers
from calchub.db.tables import projects
from calchub.db.types import utcnow
from calchub.licenses.terms import license_standing
from calchub.projects.store import ProjectRow, member_upgrades

log = logging.getLogger("calchub.projects")

TRIGGERS = {
    "sqlite": {
        "quota_version_members_insert",
        "quota_version_members_delete",
        "quota_version_members_update",
        "quota_version_licenses_applied",
        "quota_version_license_terms",
        "quota_version_license_deleted",
    },
    "postgresql": {
        "quota_version_members",
        "quota_version_licenses_applied",
        "quota_version_license_terms",
        "quota_version_license_deleted",
    },
}


@dataclass(frozen=True)
class QuotaInputs:
    # Members' and counting licenses' upgrades (memory, cores, disk_quota, mintime, network).
    upgrades: list[dict[str, Any]]
    # The `quota` maps of the counting licenses.
    license_quotas: list[dict[str, Any]]


class QuotaInputsStore:
    """Reads a project's quota inputs, from its row when they are still current."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._trusted: bool | None = None  # whether the triggers exist (checked once)

    async def get(self, project: ProjectRow) -> QuotaInputs:
        now = utcnow()
        if await self._triggers_exist():
            kept = _current(project.quota_inputs, project.quota_version, now)
            if kept is not None:
                return kept
        async with self._engine.connect() as conn:
            upgrades = await member_upgrades(conn, project.project_id)
            standing = await license_standing(conn, project.project_id, now)
        inputs = QuotaInputs(
            upgrades + [terms.upgrades for terms in standing.terms],
            [terms.quota for terms in standing.terms],
        )
        if self._trusted and not standing.depends_on_others:
            await self._keep(project, inputs, standing.changes_at)
        return inputs

    async def _keep(self, project: ProjectRow, inputs: QuotaInputs, until: datetime | None) -> None:
        stamped = {
            "version": project.quota_version,
            "until": until.isoformat() if until is not None else None,
            "upgrades": inputs.upgrades,
            "license_quotas": inputs.license_quotas,
        }
        # Read after the version it is stamped with: a change in between moved the version,
        # so what is kept here is never used. The condition spares a write that could only
        # be stale.
        async with self._engine.begin() as conn:
            await conn.execute(
                update(projects)
                .where(
                    projects.c.project_id == project.project_id,
                    projects.c.quota_version == project.quota_version,
                )
                .values(quota_inputs=stamped)
            )

    async def _triggers_exist(self) -> bool:
        if self._trusted is None:
            wanted = TRIGGERS.get(self._engine.dialect.name, set())
            missing = await missing_triggers(self._engine, wanted) if wanted else {"?"}
            if missing:
                log.error(
                    "quota inputs are read on every call: triggers %s are missing",
                    ", ".join(sorted(missing)),
                )
            self._trusted = not missing
        return self._trusted


def _current(kept: Any, version: int, now: datetime) -> QuotaInputs | None:
    if not isinstance(kept, dict) or kept.get("version") != version:
        return None
    until = kept.get("until")
    if until is not None:
        try:
            if now >= datetime.fromisoformat(str(until)):
                return None
        except ValueError:
            return None
    upgrades, license_quotas = kept.get("upgrades"), kept.get("license_quotas")
    if not isinstance(upgrades, list) or not isinstance(license_quotas, list):
        return None
    return QuotaInputs(upgrades, license_quotas)
