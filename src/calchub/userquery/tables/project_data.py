"""Rows that belong to one project: invite tokens, the project log and mentions
(spec §3.7, §3.9, §3.14)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from calchub.access import GROUPS_THAT_WRITE
from calchub.db.tables import mentions, project_invite_tokens, project_log
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, setting
from calchub.userquery.schema import Rule, Scope, SetContext, TableSpec


async def _check_token(ctx: SetContext) -> None:
    token = ctx.query.get("token")
    if not isinstance(token, str) or not token.strip():
        raise setting("token", "token must be a non-empty string")


# Tokens let anyone who holds one join as a collaborator, so only writers see and make them.
PROJECT_INVITE_TOKENS = TableSpec(
    name="project_invite_tokens",
    storage=project_invite_tokens,
    primary_key=("token",),
    get_fields={
        "project_id": None,
        "token": None,
        "expires": None,
        "created": None,
        "usage_limit": None,
        "counter": None,
    },
    set_fields={
        "project_id": Rule.PROJECT_WRITE,
        "token": Rule.ALLOW,
        "expires": Rule.ALLOW,
        "created": Rule.ALLOW,
        "usage_limit": Rule.ALLOW,
    },
    scope=Scope.MEMBER_PROJECTS,
    read_groups=GROUPS_THAT_WRITE,
    default_options=[{"order_by": "-created"}],
    on_set=_check_token,
)


def _log_id(query: dict[str, Any], caller: Caller) -> str:
    given = query.get("id")
    if given is None:
        return str(uuid.uuid4())
    if not isinstance(given, str) or len(given) > 36 or not given:
        raise ValueError("id must be a uuid")
    return given


async def _own_entry(ctx: SetContext) -> None:
    """A member appends entries and may amend their own; nobody rewrites another's."""
    old = ctx.old
    if old is not None and not ctx.caller.is_admin and old.account_id != ctx.caller.account_id:
        raise QueryError("FATAL: project_log.id belongs to another account's entry")


PROJECT_LOG = TableSpec(
    name="project_log",
    storage=project_log,
    primary_key=("id",),
    get_fields={"id": None, "project_id": None, "time": None, "account_id": None, "event": None},
    set_fields={
        "id": Rule.COMPUTED,
        "project_id": Rule.PROJECT_WRITE,
        "account_id": Rule.ACCOUNT_ID,
        "time": Rule.ALLOW,
        "event": Rule.ALLOW,
    },
    scope=Scope.MEMBER_PROJECTS,
    json_fields=frozenset({"event"}),
    # PostgreSQL's "2 months", as days so that both databases use the same window.
    recent=("time", timedelta(days=61)),
    default_options=[{"order_by": "-time"}, {"limit": 300}],
    computed={"id": _log_id},
    insert_defaults={"time": lambda caller: caller.now},
    on_set=_own_entry,
)

PROJECT_LOG_ALL = replace(
    PROJECT_LOG,
    name="project_log_all",
    recent=None,
    default_options=[{"order_by": "-time"}, {"limit": 7500}],
)


def _mention_time(query: dict[str, Any], caller: Caller) -> Any:
    return query.get("time") or caller.now


MENTIONS = TableSpec(
    name="mentions",
    storage=mentions,
    primary_key=("time", "project_id", "path", "target"),
    get_fields={
        "time": None,
        "project_id": None,
        "path": None,
        "source": None,
        "target": None,
        "priority": None,
        "description": None,
        "users": None,
    },
    set_fields={
        "time": Rule.COMPUTED,
        "project_id": Rule.PROJECT_WRITE,
        "path": Rule.ALLOW,
        # CoCalc takes any source; a mention always comes from the caller here.
        "source": Rule.ACCOUNT_ID,
        "target": Rule.ALLOW,
        "priority": Rule.ALLOW,
        "description": Rule.ALLOW,
        "users": Rule.ALLOW,
    },
    scope=Scope.MEMBER_PROJECTS,
    json_fields=frozenset({"users"}),
    recent=("time", timedelta(days=14)),
    default_options=[{"order_by": "-time"}, {"limit": 100}],
    computed={"time": _mention_time},
)

SPECS = (PROJECT_INVITE_TOKENS, PROJECT_LOG, PROJECT_LOG_ALL, MENTIONS)
