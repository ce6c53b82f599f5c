"""Project membership changes: add_collaborator's rules (direct and through invite tokens),
removing collaborators, and the sign-up actions that turn email invitations into membership."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from calchub.access import GROUPS_THAT_WRITE, project_role, role_of
from calchub.actor import Actor
from calchub.db.tables import (
    account_creation_actions,
    accounts,
    project_invite_tokens,
    project_users,
    projects,
)
from calchub.db.types import utcnow
from calchub.errors import DomainError, Invalid
from calchub.hub import Hub
from calchub.ids import is_valid_uuid, new_id
from calchub.projects.access import require_project

log = logging.getLogger("calchub.projects")

INVITE_ACTION_LIFETIME = timedelta(days=14)
# Two requests adding the same member at once: the loser retries and then skips that member.
_ADD_ATTEMPTS = 3
# Groups an invitation may grant; anything else stored in an action is ignored.
_INVITABLE_GROUPS = frozenset({"collaborator", "viewer"})


class CollaboratorError(DomainError):
    """A rule of add_collaborator was broken; the message is CoCalc's."""


@dataclass(frozen=True)
class AddRequest:
    actor: Actor
    accounts: list[str]
    projects: list[str | None]
    tokens: list[str | None] | None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def add_request(
    actor: Actor,
    account_id: str | list[str],
    project_id: str | list[str] | None,
    token_id: str | list[str | None] | None,
) -> AddRequest:
    """Normalise the single and array forms of the message to lists."""
    return AddRequest(
        actor=actor,
        accounts=_as_list(account_id),
        projects=[] if project_id is None else _as_list(project_id),
        tokens=None if token_id is None else _as_list(token_id),
    )


async def _projects_from_tokens(conn: AsyncConnection, tokens: list[str | None]) -> list[str]:
    if any(token is None for token in tokens):
        raise CollaboratorError("If tokens are specified, they must all be non-null.")
    # PostgreSQL cannot compare text holding NUL; such a token cannot exist anyway.
    wanted = {t for t in tokens if t is not None and "\x00" not in t}
    t = project_invite_tokens.c
    rows = {
        row.token: row
        for row in await conn.execute(select(project_invite_tokens).where(t.token.in_(wanted)))
    }
    now = utcnow()
    found: list[str] = []
    for token in tokens:
        row = rows.get(token or "")
        if row is None:
            raise CollaboratorError("Project invite token is not valid - no such token")
        if row.expires is not None and row.expires <= now:
            raise CollaboratorError("Project invite token is not valid - the token already expired")
        if row.usage_limit is not None and row.counter >= row.usage_limit:
            raise CollaboratorError(
                f"Project invite token is not valid - the token can only be used "
                f"{row.usage_limit} times"
            )
        found.append(row.project_id)
    return found


def _check_ids(accounts_: list[str], projects_: list[str | None]) -> None:
    if len(accounts_) != len(projects_):
        raise CollaboratorError(
            f"accounts (of length {len(accounts_)}) and projects (of length {len(projects_)}) "
            "must be arrays of the same length"
        )
    for account_id in accounts_:
        if not is_valid_uuid(account_id):
            raise CollaboratorError(
                f"all account id's must be valid uuid's, but \"{account_id}\" is not"
            )
    for project_id in projects_:
        if project_id and not is_valid_uuid(project_id):
            raise CollaboratorError(
                f"all project id's must be valid uuid's (or empty), but \"{project_id}\" is not"
            )


async def _groups_of(
    conn: AsyncConnection, account_id: str, project_ids: set[str]
) -> dict[str, str]:
    pu = project_users.c
    rows = await conn.execute(
        select(pu.project_id, pu.group).where(
            pu.account_id == account_id, pu.project_id.in_(project_ids)
        )
    )
    return {row.project_id: row.group for row in rows}


async def _existing_projects(conn: AsyncConnection, project_ids: set[str]) -> dict[str, Any]:
    rows = await conn.execute(
        select(projects.c.project_id, projects.c.course).where(
            projects.c.project_id.in_(project_ids), projects.c.deleted.is_(False)
        )
    )
    return {row.project_id: row.course for row in rows}


async def _may_write(conn: AsyncConnection, actor: Actor, project_id: str) -> bool:
    return (await project_role(conn, actor, project_id)).may_write


async def _check_self_add(conn: AsyncConnection, actor: Actor, project_id: str) -> None:
    """CoCalc lets a student add themself to their project of a course they help run."""
    course = (await _existing_projects(conn, {project_id})).get(project_id, False)
    if course is False:
        raise CollaboratorError(f'no project with id "{project_id}"')
    if await _may_write(conn, actor, project_id):
        return
    course_project = course.get("project_id") if isinstance(course, dict) else None
    if not isinstance(course_project, str) or not is_valid_uuid(course_project):
        raise CollaboratorError(f'cannot add self to "{project_id}" -- must be an admin')
    if not await _may_write(conn, actor, course_project.lower()):
        raise CollaboratorError(
            f'cannot add self to "{project_id}" -- must be owner or collaborator on course project'
        )


async def _check_write_access(conn: AsyncConnection, request: AddRequest, pids: list[str]) -> None:
    actor = request.actor
    if actor.is_admin:
        missing = set(pids) - set(await _existing_projects(conn, set(pids)))
        if missing:
            raise CollaboratorError(f'no project with id "{sorted(missing)[0]}"')
        return
    caller = actor.caller
    if len(pids) == 1 and request.accounts == [caller]:
        await _check_self_add(conn, actor, pids[0])
        return
    groups = await _groups_of(conn, caller, set(pids))
    for project_id in pids:
        if not role_of(actor, project_id, groups.get(project_id)).may_write:
            raise CollaboratorError(
                f"user {caller} does not have write access to project {project_id}"
            )


async def _check_accounts_exist(conn: AsyncConnection, account_ids: list[str]) -> None:
    """Deleted accounts count as gone: nobody adds them to anything."""
    rows = await conn.execute(
        select(accounts.c.account_id).where(
            accounts.c.account_id.in_(set(account_ids)), accounts.c.deleted.is_(False)
        )
    )
    known = {row.account_id for row in rows}
    for account_id in account_ids:
        if account_id not in known:
            raise CollaboratorError(f'no account with id "{account_id}"')


async def _new_pairs(conn: AsyncConnection, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (project, account) pairs that are not members yet, first occurrence only."""
    pu = project_users.c
    present = {
        (row.project_id, row.account_id)
        for row in await conn.execute(
            select(pu.project_id, pu.account_id).where(
                pu.project_id.in_({p for p, _ in pairs}), pu.account_id.in_({a for _, a in pairs})
            )
        )
    }
    fresh: list[tuple[str, str]] = []
    for pair in pairs:
        if pair not in present:
            present.add(pair)
            fresh.append(pair)
    return fresh


async def insert_members(conn: AsyncConnection, pairs: list[tuple[str, str]], group: str) -> None:
    if pairs:
        now = utcnow()
        await conn.execute(
            insert(project_users),
            [
                {"project_id": p, "account_id": a, "group": group, "hide": False, "added": now}
                for p, a in pairs
            ],
        )


async def _count_token_uses(
    conn: AsyncConnection,
    tokens: list[str],
    added: list[tuple[str, str]],
    pairs: list[tuple[str, str]],
) -> None:
    """Each token's counter grows by the members it actually added, never past its limit."""
    uses: Counter[str] = Counter()
    remaining = list(added)
    for token, pair in zip(tokens, pairs, strict=True):
        if pair in remaining:
            remaining.remove(pair)
            uses[token] += 1
    t = project_invite_tokens.c
    for token, count in uses.items():
        query = (
            update(project_invite_tokens)
            .where(t.token == token, t.usage_limit.is_(None) | (t.counter + count <= t.usage_limit))
            .values(counter=t.counter + count)
        )
        if (await conn.execute(query)).rowcount == 0:
            limit = await conn.scalar(select(t.usage_limit).where(t.token == token))
            raise CollaboratorError(
                f"Project invite token is not valid - the token can only be used {limit} times"
            )


async def _add_once(engine: AsyncEngine, request: AddRequest) -> list[str]:
    async with engine.begin() as conn:
        if request.tokens is not None:
            project_ids: list[str | None] = list(await _projects_from_tokens(conn, request.tokens))
        else:
            project_ids = list(request.projects)
        _check_ids(request.accounts, project_ids)
        account_ids = [a.lower() for a in request.accounts]
        pids = [(p or "").lower() for p in project_ids]
        if request.tokens is None:
            await _check_write_access(conn, request, pids)
        # A deleted project takes no new members, whoever asks and however.
        missing = set(pids) - set(await _existing_projects(conn, set(pids)))
        if missing:
            raise CollaboratorError(f'no project with id "{sorted(missing)[0]}"')
        await _check_accounts_exist(conn, account_ids)
        pairs = list(zip(pids, account_ids, strict=True))
        added = await _new_pairs(conn, pairs)
        await insert_members(conn, added, "collaborator")
        if request.tokens is not None:
            await _count_token_uses(conn, [t or "" for t in request.tokens], added, pairs)
        return pids


async def add_collaborators(engine: AsyncEngine, request: AddRequest) -> list[str]:
    """Apply an add_collaborator request in one transaction; returns the project ids used."""
    for attempt in range(_ADD_ATTEMPTS):
        try:
            return await _add_once(engine, request)
        except IntegrityError:
            if attempt == _ADD_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def ensure_member(
    conn: AsyncConnection, project_id: str, account_id: str, group: str
) -> None:
    """Make the account a member with at least `group`'s rights; an owner stays owner."""
    current = (await _groups_of(conn, account_id, {project_id})).get(project_id)
    if current is None:
        await insert_members(conn, [(project_id, account_id)], group)
    elif current not in GROUPS_THAT_WRITE and group == "collaborator":
        await conn.execute(
            update(project_users)
            .where(
                project_users.c.project_id == project_id, project_users.c.account_id == account_id
            )
            .values(group=group)
        )


async def add_member(engine: AsyncEngine, project_id: str, account_id: str) -> None:
    for attempt in range(_ADD_ATTEMPTS):
        try:
            async with engine.begin() as conn:
                await ensure_member(conn, project_id, account_id, "collaborator")
            return
        except IntegrityError:
            if attempt == _ADD_ATTEMPTS - 1:
                raise


def _account_id(value: str) -> str:
    if not is_valid_uuid(value):
        raise Invalid(f"invalid account_id -- {value}")
    return value.lower()


async def remove_collaborator(hub: Hub, actor: Actor, project_id: str, account_id: str) -> None:
    """Owners are never removed; removing a non-member changes nothing."""
    project = await require_project(hub, actor, project_id, write=True)
    member = _account_id(account_id)
    pu = project_users.c
    async with hub.engine.begin() as conn:
        await conn.execute(
            delete(project_users).where(
                pu.project_id == project.project_id, pu.account_id == member, pu.group != "owner"
            )
        )


# --- invitations by email -----------------------------------------------------------------


async def record_invite_action(engine: AsyncEngine, email: str, project_id: str) -> None:
    """Remember that whoever signs up with `email` joins the project (for 14 days)."""
    action = {"action": "add_to_project", "group": "collaborator", "project_id": project_id}
    expire = utcnow() + INVITE_ACTION_LIFETIME
    ac = account_creation_actions.c
    async with engine.begin() as conn:
        rows = await conn.execute(
            select(ac.id, ac.action).where(ac.email_address == email).with_for_update()
        )
        same = [row.id for row in rows if row.action == action]
        if same:
            # A repeated invitation extends the first one instead of piling up rows.
            await conn.execute(
                update(account_creation_actions).where(ac.id.in_(same)).values(expire=expire)
            )
        else:
            await conn.execute(
                insert(account_creation_actions).values(
                    id=new_id(), email_address=email, action=action, expire=expire
                )
            )


async def _apply_action(conn: AsyncConnection, account_id: str, action: Any) -> None:
    if not isinstance(action, dict) or action.get("action") != "add_to_project":
        return
    project_id = action.get("project_id")
    group = action.get("group")
    if not is_valid_uuid(project_id) or group not in _INVITABLE_GROUPS:
        return
    project_id = str(project_id).lower()
    if await _existing_projects(conn, {project_id}):
        await ensure_member(conn, project_id, account_id, str(group))


async def run_creation_actions(engine: AsyncEngine, account_id: str, email: str | None) -> None:
    """Carry out what invitations to `email` promised, then forget them (expired ones too).

    Called after sign-up and after an email change; a failure is logged, never raised, so
    that it cannot undo the account change that triggered it."""
    if not email:
        return
    ac = account_creation_actions.c
    try:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(ac.action, ac.expire)
                    .where(ac.email_address == email.lower())
                    .with_for_update()
                )
            ).all()
            now = utcnow()
            for row in rows:
                if row.expire > now:
                    await _apply_action(conn, account_id, row.action)
            await conn.execute(
                delete(account_creation_actions).where(ac.email_address == email.lower())
            )
    except Exception:
        log.exception("could not apply the account creation actions of a new address")
