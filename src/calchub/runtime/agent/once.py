"""One read served by a short-lived process in place of the agent: a public read of a
stopped project, which must not start it. The request arrives on the socket the hub handed
over, is served by the agent's own handlers (the same path resolution, caps and errors),
and the process ends."""

from __future__ import annotations

import functools

from . import files, listing
from . import sockets as socket
from .kernel import apply_rlimits
from .project import Config, Project
from .replies import answer
from .wire import recv_frame

HEADER_READ_TIMEOUT_S = 10.0
# Nothing here writes, starts processes or runs commands.
READ_ONLY_OPERATIONS = {"read": files.op_read, "list": listing.op_list}


def serve_once(config: Config) -> int:
    apply_rlimits(config.rlimits)
    project = Project(config)
    with socket.socket(fileno=config.listen_fd) as conn:
        conn.settimeout(HEADER_READ_TIMEOUT_S)
        try:
            request = recv_frame(conn)
        except (OSError, EOFError, ValueError):
            return 1
        conn.settimeout(None)
        op = request.get("op")
        found = READ_ONLY_OPERATIONS.get(op) if isinstance(op, str) else None
        handler = None if found is None else functools.partial(found, project)
        answer(conn, handler, request, [])
    return 0
