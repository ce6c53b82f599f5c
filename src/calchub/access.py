"""The one access rule: what a caller is to a project, and whether it may act for an account.

Every endpoint, query table and sync table asks here; each then words a refusal the way its
clients expect (those texts differ between CoCalc's endpoints and are part of the protocol).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from calchub.actor import Actor
from calchub.db.json_sql import sql_text
from calchub.db.tables import project_users

# Membership groups as stored in project_users, by what they allow (admins aside);
# anything else stored there grants nothing.
GROUPS_THAT_READ = frozenset({"owner", "collaborator", "viewer"})
GROUPS_THAT_WRITE = frozenset({"owner", "collaborator"})
GROUPS_THAT_OWN = frozenset({"owner"})


class Role(enum.Enum):
    NONE = "none"
    VIEWER = "viewer"
    COLLABORATOR = "collaborator"
    OWNER = "owner"
    # A key scoped to this very project: it acts as the project, with full access to it.
    PROJECT = "project"
    # A site admin who is not an owner: may do anything an owner may.
    ADMIN = "admin"

    def grants(self, groups: Collection[str]) -> bool:
        """Whether this role may do what members of `groups` may. An admin and a key of the
        project itself may do anything there."""
        return self in (Role.ADMIN, Role.PROJECT) or self.value in groups

    @property
    def may_read(self) -> bool:
        return self.grants(GROUPS_THAT_READ)

    @property
    def may_write(self) -> bool:
        return self.grants(GROUPS_THAT_WRITE)

    @property
    def may_own(self) -> bool:
        """Owner-only operations (delete, change owner-only settings)."""
        return self.grants(GROUPS_THAT_OWN)


def role_of(actor: Actor, project_id: str, group: str | None) -> Role:
    """The rule itself. `group` is the actor's membership group in the project (None when
    not a member, or when the actor has no account)."""
    if actor.project_id is not None:
        return Role.PROJECT if actor.project_id == project_id else Role.NONE
    if group == "owner":
        return Role.OWNER
    if actor.is_admin:
        return Role.ADMIN
    if group == "collaborator":
        return Role.COLLABORATOR
    if group == "viewer":
        return Role.VIEWER
    return Role.NONE


async def member_group(conn: AsyncConnection, project_id: str, account_id: str) -> str | None:
    group = await conn.scalar(
        select(project_users.c.group).where(
            project_users.c.project_id == project_id, project_users.c.account_id == account_id
        )
    )
    return str(group) if group in GROUPS_THAT_READ else None


async def project_role(conn: AsyncConnection, actor: Actor, project_id: str) -> Role:
    """The actor's role on the project (which must be given in its stored, lower-case form).
    Does not check that the project exists."""
    group = None
    if actor.account_id is not None and actor.project_id is None:
        group = await member_group(conn, project_id, actor.account_id)
    return role_of(actor, project_id, group)


def member_projects(account_id: str, groups: Collection[str] = GROUPS_THAT_READ) -> Select[Any]:
    """The rule for many projects at once, as SQL: ids of the projects where the account's
    group is one of `groups` (an admin's wider rights are the caller's to add)."""
    # The groups are constants in the statement: one text whoever asks, with no list to
    # expand into parameters at each execution.
    named = [sql_text(group) for group in sorted(groups)]
    return select(project_users.c.project_id).where(
        project_users.c.account_id == account_id, project_users.c.group.in_(named)
    )


# Made once, as the conditions that never change: an alias builds a proxy of every column,
# and each condition is an expression to build (about 0.1 ms per listing in all).
_MEMBER = project_users.alias("member")


@functools.cache
def _member_group_in(groups: tuple[str, ...]) -> ColumnElement[bool]:
    return _MEMBER.c.group.in_([sql_text(group) for group in groups])


def membership_of(
    project_id: ColumnElement[Any], account_id: str, groups: Collection[str] = GROUPS_THAT_READ
) -> list[ColumnElement[bool]]:
    """member_projects as conditions that join the account's membership rows to the rows of
    `project_id` (there is one per project, so no row comes twice). SQLite's planner then
    walks the memberships and looks each row up, where for `IN` it first copies the ids
    into a temporary index: about a fifth less work for a long listing."""
    return [
        _MEMBER.c.project_id == project_id,
        _MEMBER.c.account_id == account_id,
        _member_group_in(tuple(sorted(groups))),
    ]


def may_act_for_account(actor: Actor, account_id: str) -> bool:
    """Whether the actor may read or change the account's own data: itself, or an admin."""
    if actor.project_id is not None:
        return False
    return actor.is_admin or (
        actor.account_id is not None and actor.account_id == account_id.lower()
    )
