"""v1 handlers for adding, removing and inviting project collaborators."""

from __future__ import annotations

from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, handles
from calchub.projects.collaborators import (
    CollaboratorError,
    add_collaborators,
    add_request,
    remove_collaborator,
)
from calchub.projects.invitations import (
    InvitationText,
    invite_collaborator,
    invite_noncloud_collaborators,
)


@handles("add_collaborator")
async def add_collaborator(call: Call, msg: m.AddCollaborator) -> Fields:
    request = add_request(call.actor, msg.account_id, msg.project_id, msg.token_id)
    try:
        project_ids = await add_collaborators(call.hub.engine, request)
    except CollaboratorError as exc:
        # CoCalc answers this event with the thrown Error as a string.
        raise CollaboratorError(f"Error: {exc}") from None
    reply: Fields = {}
    if msg.token_id is not None:
        reply["project_id"] = project_ids if isinstance(msg.token_id, list) else project_ids[0]
    return reply


@handles("remove_collaborator")
async def remove_collaborator_handler(call: Call, msg: m.RemoveCollaborator) -> Fields:
    await remove_collaborator(call.hub, call.actor, msg.project_id, msg.account_id)
    return {}


def _text(msg: m.InviteCollaborator | m.InviteNoncloudCollaborators) -> InvitationText:
    return InvitationText(
        body=msg.email,
        subject=msg.subject,
        title=msg.title,
        replyto=msg.replyto,
        replyto_name=msg.replyto_name,
    )


@handles("invite_collaborator")
async def invite_collaborator_handler(call: Call, msg: m.InviteCollaborator) -> Fields:
    await invite_collaborator(call.hub, call.actor, msg.project_id, msg.account_id, _text(msg))
    return {}


@handles("invite_noncloud_collaborators")
async def invite_noncloud_collaborators_handler(
    call: Call, msg: m.InviteNoncloudCollaborators
) -> Fields:
    text = _text(msg)
    mesg = await invite_noncloud_collaborators(call.hub, call.actor, msg.project_id, msg.to, text)
    return {"mesg": mesg}
