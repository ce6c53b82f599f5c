"""project_exec's `aggregate`: identical calls whose aggregate value is not larger than a run
in progress (or queued) share that run's result; a larger value queues one more run after it.
Meant for compile-on-save, where many saves should trigger few builds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class _Run:
    value: Any
    future: asyncio.Future[Any]
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Aggregator:
    def __init__(self) -> None:
        self._runs: dict[Hashable, list[_Run]] = {}

    async def run(self, key: Hashable, value: Any, action: Callable[[], Awaitable[T]]) -> T:
        runs = self._runs.setdefault(key, [])
        for existing in runs:
            if not _greater(value, existing.value):
                return await asyncio.shield(existing.future)
        previous = runs[-1] if runs else None
        run = _Run(value, asyncio.get_running_loop().create_future())
        runs.append(run)
        try:
            if previous is not None:
                await previous.done.wait()
            result = await action()
            run.future.set_result(result)
            return result
        except BaseException as exc:
            run.future.set_exception(exc)
            run.future.exception()  # retrieved here; sharers re-raise it themselves
            raise
        finally:
            run.done.set()
            runs.remove(run)
            if not runs:
                self._runs.pop(key, None)


def _greater(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return bool(a != b)
