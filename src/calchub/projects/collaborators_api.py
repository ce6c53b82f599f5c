"""Handlers for adding, removing and inviting project collaborators."""

from __future__ import annotations

from typing import Any

from calchub.accounts.store import get_account, is_valid_uuid
from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.api.registry import handles
from calchub.projects.access import require_project
from calchub.projects.collaborators import (
    CollaboratorError,
    account_exists,
    add_collaborators,
    add_member,
    add_request,
    remove_collaborator,
)
from calchub.projects.invitations import (
    Invitation,
    InviteError,
    invite_by_email,
    invite_subject,
    parse_recipients,
    send_invitation,
)


def _account_id(value: str) -> str:
    if not is_valid_uuid(value):
        raise HandlerError(f"invalid account_id -- {value}")
    return value.lower()


@handles("add_collaborator")
async def add_collaborator(call: Call, msg: m.AddCollaborator) -> dict[str, Any]:
    request = add_request(
        call.caller, await call.is_admin(), msg.account_id, msg.project_id, msg.token_id
    )
    try:
        project_ids = await add_collaborators(call.hub.engine, request)
    except CollaboratorError as exc:
        raise HandlerError(f"Error: {exc}") from None
    reply: dict[str, Any] = {"event": "success"}
    if msg.token_id is not None:
        reply["project_id"] = project_ids if isinstance(msg.token_id, list) else project_ids[0]
    return reply


@handles("remove_collaborator")
async def remove_collaborator_handler(call: Call, msg: m.RemoveCollaborator) -> dict[str, Any]:
    project = await require_project(call, msg.project_id, write=True)
    await remove_collaborator(call.hub.engine, project.project_id, _account_id(msg.account_id))
    return {"event": "success"}


@handles("invite_collaborator")
async def invite_collaborator(call: Call, msg: m.InviteCollaborator) -> dict[str, Any]:
    project = await require_project(call, msg.project_id, write=True)
    invitee = _account_id(msg.account_id)
    if not await account_exists(call.hub.engine, invitee):
        raise HandlerError(f'no account with id "{invitee}"')
    await add_member(call.hub.engine, project.project_id, invitee)
    async with call.hub.engine.connect() as conn:
        account = await get_account(conn, invitee)
    invitation = Invitation(
        project_id=project.project_id,
        title=msg.title if msg.title is not None else project.title,
        body=msg.email,
        subject=msg.subject,
        replyto=msg.replyto,
        replyto_name=msg.replyto_name,
    )
    if account is not None and account.email_address:
        try:
            await send_invitation(
                call.hub, invitation, account.email_address, invite_subject(invitation)
            )
        except InviteError as exc:
            raise HandlerError(str(exc)) from None
    return {"event": "success"}


@handles("invite_noncloud_collaborators")
async def invite_noncloud_collaborators(
    call: Call, msg: m.InviteNoncloudCollaborators
) -> dict[str, Any]:
    project = await require_project(call, msg.project_id, write=True)
    invitation = Invitation(
        project_id=project.project_id,
        title=msg.title,
        body=msg.email,
        subject=msg.subject,
        replyto=msg.replyto,
        replyto_name=msg.replyto_name,
    )
    try:
        added = await invite_by_email(call.hub, invitation, parse_recipients(msg.to))
    except InviteError as exc:
        raise HandlerError(str(exc)) from None
    mesg = f"Invited {msg.to} to collaborate on a project."
    if added:
        # Addresses with an account join at once and get no email.
        mesg += f" Added {', '.join(added)} directly, as they already have an account."
    return {"event": "invite_noncloud_collaborators_resp", "mesg": mesg}
