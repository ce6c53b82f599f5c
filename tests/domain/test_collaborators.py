"""Collaborators through the domain: what adding and removing one changes, on both runtimes."""

from __future__ import annotations

import pytest

from calchub.errors import Refused
from calchub.hub import Hub
from calchub.projects import files
from calchub.projects.collaborators import (
    CollaboratorError,
    add_collaborators,
    add_request,
    remove_collaborator,
)
from tests.domain.conftest import Person


async def test_a_collaborator_writes_until_removed(
    hub: Hub, owner: Person, stranger: Person, project: str
) -> None:
    guest = stranger.actor
    with pytest.raises(Refused):
        await files.write_text(hub, guest, project, "guest.txt", "no")
    # Only a member who writes may add others.
    with pytest.raises(CollaboratorError, match="does not have write access"):
        await add_collaborators(hub.engine, add_request(guest, owner.actor.caller, project, None))
    await add_collaborators(hub.engine, add_request(owner.actor, guest.caller, project, None))
    await files.write_text(hub, guest, project, "guest.txt", "yes")
    assert await files.read_text(hub, owner.actor, project, "guest.txt") == "yes"
    await remove_collaborator(hub, owner.actor, project, guest.caller)
    with pytest.raises(Refused):
        await files.read_text(hub, guest, project, "guest.txt")
    # The owner is never removed.
    await remove_collaborator(hub, owner.actor, project, owner.actor.caller)
    assert await files.read_text(hub, owner.actor, project, "guest.txt") == "yes"
