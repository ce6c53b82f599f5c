"""Per-key asyncio locks that do not outlive their use, pulses to wait on, and per-key
throttles that forget keys once they no longer hold anything back."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress


class KeyedLocks:
    """One lock per key, dropped once nobody holds or waits for it, so the table stays as
    small as the number of keys in use."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Pulses:
    """A count of events on this hub (copies it finished, say) that waiters can sleep on:
    one who read `count` before looking elsewhere wakes as soon as it moves, and so never
    misses an event that happened in between."""

    def __init__(self) -> None:
        self.count = 0
        self._moved = asyncio.Condition()

    async def pulse(self) -> None:
        async with self._moved:
            self.count += 1
            self._moved.notify_all()

    async def wait_past(self, seen: int, timeout_s: float) -> None:
        """Return once `count` differs from `seen`, or after `timeout_s`."""
        async with self._moved:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait_for(lambda: self.count != seen), timeout_s)


class KeyedCounts:
    """How many of something each key has under way, up to `limit` each; a key is dropped
    once it has none, so the table stays as small as the number of keys in use."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def try_take(self, key: str) -> bool:
        """Count one more for `key`, or return False when it already has `limit`."""
        count = self._counts.get(key, 0)
        if count >= self.limit:
            return False
        self._counts[key] = count + 1
        return True

    def give_back(self, key: str) -> None:
        count = self._counts[key] - 1
        if count:
            self._counts[key] = count
        else:
            del self._counts[key]

    def __len__(self) -> int:
        return len(self._counts)


class Throttle:
    """At most one go per key every `interval_s` (on `clock`, monotonic seconds), in this
    process. Keys are kept in the order of their last go, so the ones older than the
    interval, which no longer hold anything back, are dropped from the front as new goes
    come in: the table holds about as many keys as had a go within one interval, however
    many keys there ever were."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()

    def claim(self, key: str) -> bool:
        """Whether `key` may go now; if so, its go is counted from now."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        self._prune(now)
        return True

    def _prune(self, now: float) -> None:
        while self._last:
            key, last = next(iter(self._last.items()))
            if now - last < self.interval_s:
                return
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)
