"""Which applied licenses count for a project, read from the real database (both backends):
activation, expiry and the run limit over running projects."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update

from calchub.db.tables import projects, site_licenses
from calchub.db.types import utcnow
from calchub.licenses.terms import LicenseTerms, counting_licenses
from tests.api.queries import create
from tests.conftest import User
from tests.harness import ApiClient, Database


def _license(db: Database, **fields: Any) -> str:
    license_id = str(uuid.uuid4())
    db.execute(insert(site_licenses).values(id=license_id, **fields))
    return license_id


def _apply(db: Database, project_id: str, licenses: list[str], *, running: bool) -> None:
    db.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(
            site_license={license_id: {} for license_id in licenses},
            run_state="running" if running else "opened",
        )
    )


def _counting(db: Database, project_id: str) -> list[LicenseTerms]:
    async def read() -> list[LicenseTerms]:
        async with db.engine.connect() as conn:
            return await counting_licenses(conn, project_id, utcnow())

    return db.loop.run(read())


def test_only_licenses_in_force_count(api: ApiClient, db: Database, user: User) -> None:
    now = utcnow()
    day = timedelta(days=1)
    good = _license(db, activates=now - day, upgrades={"memory": 500}, quota={"ram": 2})
    never = _license(db, upgrades={"memory": 1})
    later = _license(db, activates=now + day, upgrades={"memory": 2})
    expired = _license(db, activates=now - 2 * day, expires=now - day, upgrades={"memory": 3})
    missing = str(uuid.uuid4())
    project_id = create(api, user)
    _apply(db, project_id, [good, never, later, expired, missing, "not-a-uuid"], running=False)
    assert _counting(db, project_id) == [
        LicenseTerms(license_id=good, upgrades={"memory": 500}, quota={"ram": 2})
    ]


def test_run_limit_counts_other_running_projects(api: ApiClient, db: Database, user: User) -> None:
    license_id = _license(
        db, activates=utcnow() - timedelta(hours=1), run_limit=2, quota={"cpu": 2}
    )
    first, second, third = (create(api, user) for _ in range(3))
    _apply(db, first, [license_id], running=True)
    _apply(db, second, [license_id], running=False)
    _apply(db, third, [license_id], running=False)
    # One other project runs with it: a second may still use it.
    assert [terms.license_id for terms in _counting(db, second)] == [license_id]
    _apply(db, second, [license_id], running=True)
    # Two others run with it now: the third gets nothing from it...
    assert _counting(db, third) == []
    # ...while the running ones keep it (each sees only one other).
    assert [terms.license_id for terms in _counting(db, first)] == [license_id]
    _apply(db, first, [license_id], running=False)
    assert [terms.license_id for terms in _counting(db, third)] == [license_id]


def test_no_run_limit_means_no_limit(api: ApiClient, db: Database, user: User) -> None:
    license_id = _license(db, activates=utcnow() - timedelta(hours=1), run_limit=0)
    projects_ = [create(api, user) for _ in range(3)]
    for project_id in projects_:
        _apply(db, project_id, [license_id], running=True)
    assert all(_counting(db, project_id) for project_id in projects_)
