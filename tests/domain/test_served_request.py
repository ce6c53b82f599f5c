"""Work a hub runs after a response serves no request: its change-counter reads are fresh
rather than shared with the request that started it (calchub/arrivals.py)."""

from __future__ import annotations

import asyncio

from calchub import arrivals
from calchub.hub import Hub


async def test_spawned_work_serves_no_request_and_leaves_the_request_as_it_was(
    hub: Hub,
) -> None:
    seen: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def work() -> None:
        seen.set_result(arrivals.served())

    arrivals.serving(41)
    try:
        hub.spawn(work(), "served request check")
        assert await seen is None
        assert arrivals.served() == 41
    finally:
        arrivals.serving(None)
