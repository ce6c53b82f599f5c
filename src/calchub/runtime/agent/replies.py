"""Running one request's handler and telling the hub how it failed, worded as the hub's
calchub.runtime.errors reads it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from . import sockets as socket
from .files import FsError, QuotaError
from .wire import send_frame

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Handler = Callable[[socket.socket, dict[str, Any], list[int]], None]


def answer(
    conn: socket.socket, handler: Handler | None, request: dict[str, Any], fds: list[int]
) -> None:
    """Run `handler` (None: an operation not served here); its failures become error
    replies."""
    try:
        if handler is None:
            raise ValueError(f"unknown operation {request.get('op')!r}")
        handler(conn, request, fds)
    except (FsError, QuotaError) as exc:
        send_frame(conn, {"ok": False, "error": exc.info})
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass
    except Exception as exc:
        with contextlib.suppress(OSError):
            send_frame(conn, {"ok": False, "error": {"code": "EAGENT", "message": repr(exc)}})
