"""Small helpers for `query` tests: send a query, unwrap the result or the error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import insert

from calchub.db.tables import project_users
from calchub.db.types import utcnow
from tests.conftest import User
from tests.harness import ApiClient, Database, Reply


def q(api: ApiClient, key: str, query: Any, **extra: Any) -> Reply:
    return api.call("query", key, {"query": query, **extra})


def ok(reply: Reply) -> Any:
    assert reply.status == 200 and reply.event == "query", reply.body
    return reply["query"]


def err(reply: Reply) -> str:
    assert reply.status == 200 and reply.event == "error", reply.body
    return str(reply["error"])


def create(api: ApiClient, user: User, title: str = "Query project") -> str:
    reply = api.call("create_project", user.api_key, {"title": title, "start": False})
    assert reply.event == "project_created", reply.body
    return str(reply["project_id"])


def join(db: Database, project_id: str, user: User, group: str = "collaborator") -> None:
    db.execute(
        insert(project_users).values(
            project_id=project_id,
            account_id=user.account_id,
            group=group,
            hide=False,
            added=utcnow(),
        )
    )


def make_team(api: ApiClient, db: Database, make_user: Callable[..., User]) -> dict[str, Any]:
    """A project with its owner, a collaborator and a viewer, and a stranger."""
    owner, collab, viewer, stranger = make_user(), make_user(), make_user(), make_user()
    project_id = create(api, owner)
    join(db, project_id, collab)
    join(db, project_id, viewer, "viewer")
    return {
        "owner": owner,
        "collab": collab,
        "viewer": viewer,
        "stranger": stranger,
        "project_id": project_id,
    }
