"""Managing one's API keys, as CoCalc's current API does (v2 `api-keys`, the hub's
`system.manageApiKeys`, the admin command line): several keys per account, each with a
name, an optional expiry and an optional project scope.

Keys of a project are shared by its collaborators: any of them may list, edit or delete
them. An account's own keys belong to it alone. A project-scoped key cannot manage keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calchub.access import GROUPS_THAT_WRITE, member_group
from calchub.accounts import keys
from calchub.accounts.keys import KeyInfo
from calchub.actor import Actor
from calchub.errors import Invalid, LimitExceeded, NotFound, NotSignedIn, Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid

MAX_KEYS_PER_ACCOUNT = 100000
MAX_NAME_LENGTH = 200

NOT_AN_ACCOUNT = "account_id is not a valid account"
NOT_COLLABORATOR = "user must be collaborator on project to manage project_id api keys"
TOO_MANY = f"There is a limit of {MAX_KEYS_PER_ACCOUNT} per account; please delete some api keys."


def describe(key: KeyInfo, *, secret: str | None = None) -> dict[str, Any]:
    """A key as CoCalc lists it (no project_id field, never the secret but at creation)."""
    described: dict[str, Any] = {
        "id": key.id,
        "account_id": key.account_id,
        "expire": key.expire,
        "created": key.created,
        "name": key.name,
        "trunc": key.trunc,
        "last_active": key.last_used,
    }
    if secret is not None:
        described["secret"] = secret
    return described


def _account(actor: Actor) -> str:
    if actor.project_id is not None or actor.account_id is None:
        raise NotSignedIn(NOT_AN_ACCOUNT)
    return actor.account_id


def _project(project_id: str | None) -> str | None:
    if project_id is None:
        return None
    if not is_valid_uuid(project_id):
        raise Invalid(f"invalid project_id '{project_id}'")
    return project_id.lower()


def _name(name: str | None) -> str:
    name = name or ""
    if len(name) > MAX_NAME_LENGTH:
        raise Invalid(f"the name of a key may be at most {MAX_NAME_LENGTH} characters")
    return name


async def _check_project(hub: Hub, account_id: str, project_id: str | None) -> None:
    """Project keys are managed by the project's owners and collaborators (an admin who is
    not one may not: a key it made would stop working at once)."""
    if project_id is None:
        return
    async with hub.engine.connect() as conn:
        if await member_group(conn, project_id, account_id) not in GROUPS_THAT_WRITE:
            raise Refused(NOT_COLLABORATOR)


async def create(
    hub: Hub,
    actor: Actor,
    *,
    name: str | None = None,
    expire: datetime | None = None,
    project_id: str | None = None,
) -> dict[str, Any]:
    """A new key; the answer carries its `secret`, shown only this once."""
    account_id = _account(actor)
    project_id = _project(project_id)
    label = _name(name)
    await _check_project(hub, account_id, project_id)
    async with hub.engine.begin() as conn:
        if await keys.count_keys(conn, account_id) >= MAX_KEYS_PER_ACCOUNT:
            raise LimitExceeded(TOO_MANY)
        info, secret = await keys.create_current_key(
            conn, account_id, name=label, expire=expire, project_id=project_id
        )
    return describe(info, secret=secret)


async def get(
    hub: Hub, actor: Actor, *, project_id: str | None = None, key_id: int | None = None
) -> list[dict[str, Any] | None]:
    """The caller's own keys, or all keys of a project it collaborates on, newest first;
    with `key_id`, that one key (`[None]` when there is no such key here)."""
    account_id = _account(actor)
    project_id = _project(project_id)
    await _check_project(hub, account_id, project_id)
    async with hub.engine.connect() as conn:
        found = await keys.find_keys(
            conn, account_id=account_id, project_id=project_id, key_id=key_id
        )
    if key_id is not None and not found:
        return [None]
    return [describe(k) for k in found]


async def made_by_caller(hub: Hub, actor: Actor) -> list[dict[str, Any]]:
    """The keys the caller made, for its account or scoped to a project, newest first, with
    their `project_id` (None: the whole account)."""
    account_id = _account(actor)
    async with hub.engine.connect() as conn:
        found = await keys.keys_made_by(conn, account_id)
    return [describe(k) | {"project_id": k.project_id} for k in found]


async def _own(hub: Hub, account_id: str, key_id: int, project_id: str | None) -> KeyInfo | None:
    async with hub.engine.connect() as conn:
        found = await keys.find_keys(
            conn, account_id=account_id, project_id=project_id, key_id=key_id
        )
    return found[0] if found else None


async def edit(
    hub: Hub,
    actor: Actor,
    key_id: int,
    *,
    project_id: str | None = None,
    changes: dict[str, Any],
) -> None:
    """Rename a key or change its expiry (`expire: None` clears it); `changes` holds only
    the fields to change, `name` and/or `expire`."""
    account_id = _account(actor)
    project_id = _project(project_id)
    await _check_project(hub, account_id, project_id)
    values: dict[str, object] = {}
    if "name" in changes:
        values["name"] = _name(changes["name"])
    if "expire" in changes:
        values["expire"] = changes["expire"]
    if await _own(hub, account_id, key_id, project_id) is None:
        raise NotFound(f"no api key with id {key_id}")
    if values:
        async with hub.engine.begin() as conn:
            await keys.change_key(conn, key_id, values)


async def delete(hub: Hub, actor: Actor, key_id: int, *, project_id: str | None = None) -> None:
    """Delete a key; silent when there is no such key here."""
    account_id = _account(actor)
    project_id = _project(project_id)
    await _check_project(hub, account_id, project_id)
    if await _own(hub, account_id, key_id, project_id) is not None:
        async with hub.engine.begin() as conn:
            await keys.revoke_api_key(conn, key_id)
