"""v2 routes that act on projects (spec §3.1, §3.5): exec and projects/*. Each reads its body
and makes one domain call; where CoCalc's v2 words a refusal differently from the other
edges, the route only chooses the words."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from calchub.api.v2.registry import Body, V2Call, route
from calchub.api.v2.route_rules import OK
from calchub.api.v2.route_rules import account as _account
from calchub.api.v2.route_rules import signed_in as _signed_in
from calchub.api.v2.route_rules import uuid as _uuid
from calchub.api.v2.route_rules import worded as _worded
from calchub.errors import Invalid, NotFound
from calchub.files import copies
from calchub.files.copies import CopyOrder
from calchub.ids import is_valid_uuid
from calchub.projects import control, exec_jobs, files, membership
from calchub.projects.collaborators import add_collaborators, add_request, remove_collaborator
from calchub.projects.creation import create_project
from calchub.projects.execution import Command, checked_env, run_command
from calchub.userquery.engine import run_query

# --- exec ----------------------------------------------------------------------------------


class ExecBody(Body):
    project_id: str | None = None
    command: str | None = Field(default=None, max_length=100_000)
    args: list[str] = Field(default_factory=list, max_length=10_000)
    path: str = ""
    timeout: float = Field(default=60, ge=0)
    max_output: int | None = Field(default=None, ge=0)
    bash: bool = False
    aggregate: Any = None
    err_on_exit: bool = True
    env: Any = None
    async_call: bool = False
    async_get: str | None = Field(default=None, max_length=100)
    async_await: bool = False
    async_stats: bool = False


@route(
    "exec",
    ExecBody,
    "Run a command in a project: `project_id`, `command`, `args`, `path` (relative to the "
    "home folder), `timeout` (s, default 60), `max_output`, `bash`, `err_on_exit`, `env` "
    "(variables set over the project's environment). With "
    "`async_call` it answers a `job_id` (and the command's `pid`) once the command started; "
    "`async_get` (with `async_await` to wait up to 60 s, `async_stats` for samples of its "
    "memory and CPU use) polls it, its output growing while it runs. Jobs are kept an hour, "
    "100 per project, at most 10 running, with up to 1 MB of output per stream.",
    '{"type":"blocking","stdout","stderr","exit_code"}',
)
async def exec_route(call: V2Call, body: ExecBody) -> Any:
    _signed_in(call, "must be signed in")
    if body.async_get is not None:
        return await exec_jobs.get_job(
            call.hub, call.actor, body.async_get, wait=body.async_await, stats=body.async_stats
        )
    project_id = _uuid(body.project_id, "project_id must be a valid uuid")
    if body.command is None:
        raise Invalid("command must be specified")
    command = Command(
        command=body.command,
        args=body.args,
        path=body.path,
        timeout=body.timeout,
        max_output=body.max_output,
        bash=body.bash,
        err_on_exit=body.err_on_exit,
        aggregate=body.aggregate,
        env=checked_env(body.env),
    )
    if body.async_call:
        return await _worded(
            exec_jobs.start_job(call.hub, call.actor, project_id, command),
            "user must be a collaborator on the project",
        )
    output = await _worded(
        run_command(call.hub, call.actor, project_id, command),
        "user must be a collaborator on the project",
    )
    return {
        "type": "blocking",
        "stdout": output.stdout,
        "stderr": output.stderr,
        "exit_code": output.exit_code,
    }


# --- projects ------------------------------------------------------------------------------


class CreateBody(Body):
    title: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=10_000)
    image: str | None = Field(default=None, max_length=256)
    license: str | None = Field(default=None, max_length=10_000)


@route("projects/create", CreateBody, "Create a project.", '{"project_id"}', public=True)
async def projects_create(call: V2Call, body: CreateBody) -> Any:
    _account(call, "user must be signed in")
    project_id = await create_project(
        call.hub,
        call.actor,
        title=body.title or "",
        description=body.description or "",
        image=body.image,
        license=body.license,
    )
    return {"project_id": project_id}


class ProjectBody(Body):
    project_id: str | None = None


def _control_route(
    path: str,
    action: Callable[..., Awaitable[None]],
    description: str,
    refusal: str,
    answer: dict[str, Any],
) -> None:
    async def handler(call: V2Call, body: ProjectBody) -> Any:
        project_id = _uuid(body.project_id, "project_id must be a valid uuid")
        _signed_in(call, "must be signed in")
        await _worded(action(call.hub, call.actor, project_id), refusal)
        return answer

    route(path, ProjectBody, description, str(answer).replace("'", '"'))(handler)


_control_route(
    "projects/start",
    control.start,
    "Start a project; answers once it runs.",
    "must be a collaborator to start project",
    OK,
)
_control_route(
    "projects/stop",
    control.stop,
    "Stop a project.",
    "must be a collaborator to stop project",
    OK,
)
# (sic) CoCalc's touch says "stop" when it refuses.
_control_route(
    "projects/touch",
    control.touch,
    "Mark a project as used now, starting it if it is stopped.",
    "must be a collaborator to stop project",
    {},
)
_control_route(
    "projects/delete",
    control.delete,
    "Delete a project (an owner's or an admin's act).",
    "must be an owner to delete a project",
    OK,
)


class MemberBody(Body):
    project_id: str | None = None
    account_id: str | None = None


@route(
    "projects/collaborators/add",
    MemberBody,
    "Add an account to a project as a collaborator.",
    '{"status":"ok"}',
)
async def collaborators_add(call: V2Call, body: MemberBody) -> Any:
    _account(call, "must be signed in")
    project_id = _uuid(body.project_id, "project_id must be a valid uuid")
    account_id = _uuid(body.account_id, "account_id must be a valid uuid")
    await add_collaborators(call.hub.engine, add_request(call.actor, account_id, project_id, None))
    return OK


@route(
    "projects/collaborators/remove",
    MemberBody,
    "Remove a collaborator from a project (owners stay).",
    '{"status":"ok"}',
)
async def collaborators_remove(call: V2Call, body: MemberBody) -> Any:
    _account(call, "must be signed in")
    project_id = _uuid(body.project_id, "project_id must be a valid uuid")
    account_id = _uuid(body.account_id, "account_id must be a valid uuid")
    await remove_collaborator(call.hub, call.actor, project_id, account_id)
    return OK


class CopyBody(Body):
    src_project_id: str | None = None
    path: str | None = Field(default=None, max_length=4096)
    target_project_id: str | None = None
    target_path: str | None = Field(default=None, max_length=4096)
    overwrite_newer: bool = False
    delete_missing: bool = False
    backup: bool = False
    timeout: float | None = Field(default=None, ge=0)
    wait_until_done: bool = True


@route(
    "projects/copy-path",
    CopyBody,
    "Copy a file or folder from one project to another (or within one).",
    '{"copy_id":""} when waiting, else {"copy_id":"<uuid>"}',
)
async def copy_path(call: V2Call, body: CopyBody) -> Any:
    _signed_in(call, "must be signed in")
    if not body.path:
        raise Invalid("path must be specified")
    src = _uuid(body.src_project_id, "src_project_id must be a valid uuid")
    target = _uuid(body.target_project_id, "target_project_id must be a valid uuid")
    order = CopyOrder(
        src_project_id=src,
        src_path=body.path,
        target_project_id=target,
        target_path=body.target_path,
        overwrite_newer=body.overwrite_newer,
        delete_missing=body.delete_missing,
        backup=body.backup,
        timeout=body.timeout,
    )
    copy_id = await copies.copy_between_projects(call.hub, call.actor, order)
    if not body.wait_until_done:
        return {"copy_id": copy_id}
    await copies.wait_for_copy(call.hub, copy_id)
    return {"copy_id": ""}


class WriteBody(Body):
    project_id: str | None = None
    path: str | None = Field(default=None, max_length=4096)
    content: str | None = None


@route(
    "projects/write-text-file",
    WriteBody,
    "Write a text file in a project (its folders are made as needed).",
    '{"status":"ok"}',
    public=True,
)
async def write_text_file(call: V2Call, body: WriteBody) -> Any:
    _signed_in(call, "must be authenticated")
    project_id = _uuid(body.project_id, "must set project_id to a valid uuid")
    if not body.path:
        raise Invalid("must specify a 'path'")
    if body.content is None:
        raise Invalid("must include content of file")
    await files.write_text(call.hub, call.actor, project_id, body.path, body.content)
    return OK


class CopyStatusBody(Body):
    copy_id: str | None = Field(default=None, max_length=100)


@route(
    "projects/copy-path-status",
    CopyStatusBody,
    "How a copy started with `wait_until_done: false` is doing.",
    '{"started","finished","copy_error"}',
)
async def copy_path_status(call: V2Call, body: CopyStatusBody) -> Any:
    _signed_in(call, "must be signed in")
    if body.copy_id is None or not is_valid_uuid(body.copy_id):
        raise NotFound("copy_id not found")
    try:
        status = await _worded(
            copies.copy_status(call.hub, call.actor, body.copy_id),
            "must be a collaborator on the target project",
        )
    except NotFound:
        raise NotFound("copy_id not found") from None
    return {
        "started": status["started"],
        "finished": status["finished"],
        "copy_error": status["error"],
    }


# --- listing, editing and membership -------------------------------------------------------


class ListBody(Body):
    limit: int = Field(default=50, ge=0, le=membership.MAX_LIMIT)
    account_id: str | None = None


@route(
    "projects/get",
    ListBody,
    "Your projects (not deleted, not hidden), most recently edited first; `limit` (default "
    "50). An admin may name another `account_id`.",
    '[{"project_id","title","description","name"}]',
    public=True,
)
async def projects_get(call: V2Call, body: ListBody) -> Any:
    return await membership.projects_of(
        call.hub, call.actor, limit=body.limit, account_id=body.account_id
    )


@route(
    "projects/get-one",
    Body,
    "Your most recently edited project, made (titled Untitled Project) if you have none.",
    '{"project_id","title"}',
    public=True,
)
async def projects_get_one(call: V2Call, body: Body) -> Any:
    found = await membership.projects_of(call.hub, call.actor, limit=1)
    if found:
        return {"project_id": found[0]["project_id"], "title": found[0]["title"]}
    title = "Untitled Project"
    return {
        "project_id": await create_project(call.hub, call.actor, title=title, description=""),
        "title": title,
    }


class UpdateBody(Body):
    project_id: str | None = None
    title: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=10_000)
    name: str | None = Field(default=None, max_length=100)
    account_id: str | None = None


@route(
    "projects/update",
    UpdateBody,
    "Set a project's `title`, `description` or `name` (empty ones are left as they are); "
    "an admin may act as another `account_id`.",
    '{"status":"ok"}',
)
async def projects_update(call: V2Call, body: UpdateBody) -> Any:
    _account(call, "must be signed in")
    project_id = _uuid(body.project_id, "project_id must be a valid uuid")
    fields = {"title": body.title, "description": body.description, "name": body.name}
    change: dict[str, Any] = {"project_id": project_id}
    change.update({key: value for key, value in fields.items() if value})
    options = None if body.account_id is None else [{"account_id": body.account_id}]
    await run_query(call.hub, call.actor, {"projects": change}, options, None, None)
    return OK


@route(
    "projects/restore",
    ProjectBody,
    "Undelete a project (a collaborator's or an admin's act).",
    '{"status":"ok"}',
)
async def projects_restore(call: V2Call, body: ProjectBody) -> Any:
    _account(call, "must be signed in")
    project_id = _uuid(body.project_id, "project_id must be a valid uuid")
    await membership.restore(call.hub, call.actor, project_id)
    return OK


@route(
    "projects/collaborators/list",
    ProjectBody,
    "The owners and collaborators of a project (empty for a project you are not in).",
    '[{"account_id","first_name","last_name"}]',
)
async def collaborators_list(call: V2Call, body: ProjectBody) -> Any:
    _signed_in(call, "must be signed in")
    project_id = _uuid(body.project_id, "project_id must be a valid uuid")
    return await membership.collaborators_of(call.hub, call.actor, project_id)


class UserTypeBody(Body):
    project_id: str | None = None
    target_account_id: str | None = None
    new_group: str | None = Field(default=None, max_length=100)


@route(
    "projects/collaborators/change-user-type",
    UserTypeBody,
    "Make a member an `owner` or a `collaborator` (`new_group`); owners decide, and a "
    "project keeps at least one owner.",
    '{"status":"ok"}',
)
async def collaborators_change_user_type(call: V2Call, body: UserTypeBody) -> Any:
    _account(call, "must be signed in")
    project_id = _uuid(body.project_id, "project_id must be a valid uuid")
    target = _uuid(body.target_account_id, "target_account_id must be a valid uuid")
    await membership.change_user_type(
        call.hub, call.actor, project_id, target, body.new_group or ""
    )
    return OK
