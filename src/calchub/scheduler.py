"""Every hub's background loop: each domain contributes duties (functions of the hub that do
whatever work is due), run in turn every interval, or sooner when woken.

Duties claim their work in the database (conditional updates, row locks), so several hubs
sharing one database never do the same work twice."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from calchub.accounts.sessions import forget_old_sessions
from calchub.files.copy_worker import start_due_copies
from calchub.hub import Hub
from calchub.jupyter.cache import forget_expired_results
from calchub.projects.duties import (
    notice_ended_projects,
    run_action_requests,
    stop_idle_projects,
)

log = logging.getLogger("calchub.scheduler")

Duty = Callable[[Hub], Awaitable[None]]

DUTIES: tuple[Duty, ...] = (
    run_action_requests,
    stop_idle_projects,
    notice_ended_projects,
    start_due_copies,
    forget_old_sessions,
    forget_expired_results,
)


async def scheduler_loop(hub: Hub, duties: Sequence[Duty], interval_s: float) -> None:
    while True:
        for duty in duties:
            try:
                await duty(hub)
            except Exception:
                log.exception("scheduled duty %s failed", duty.__name__)
        await hub.sleep_or_wake(interval_s)
