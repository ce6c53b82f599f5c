"""KeyedLocks: one holder per key at a time, and nothing kept once a key is unused; KeyedCounts:
a cap per key; Pulses: waiters wake when the count moves, including a move they did not see
happen; Throttle: one go per key and interval, and only the keys of the last interval kept."""

from __future__ import annotations

import asyncio

from calchub.locks import KeyedCounts, KeyedLocks, Pulses, Throttle


async def test_one_holder_per_key_and_an_empty_table_after() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def hold(key: str, name: str, release: asyncio.Event) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await release.wait()
            order.append(f"{name} out")

    first, second, other = asyncio.Event(), asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(hold("a", "first", first)),
        asyncio.create_task(hold("a", "second", second)),
        asyncio.create_task(hold("b", "other", other)),
    ]
    await asyncio.sleep(0)
    assert order == ["first in", "other in"]  # "second" waits for "first", not for "b"
    assert len(locks) == 2
    first.set()
    other.set()
    second.set()
    await asyncio.gather(*tasks)
    assert order.index("second in") > order.index("first out")
    assert len(locks) == 0


async def test_a_failing_holder_releases_its_key() -> None:
    locks = KeyedLocks()
    try:
        async with locks.hold("a"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(locks) == 0
    async with locks.hold("a"):
        assert len(locks) == 1


async def test_pulses_wake_waiters_and_are_never_missed() -> None:
    pulses = Pulses()
    seen = pulses.count
    waiter = asyncio.create_task(pulses.wait_past(seen, 60))
    await asyncio.sleep(0)
    assert not waiter.done()
    await pulses.pulse()
    await asyncio.wait_for(waiter, 5)
    # A pulse between reading the count and waiting still ends the wait at once.
    seen = pulses.count
    await pulses.pulse()
    await asyncio.wait_for(pulses.wait_past(seen, 60), 5)
    # Without a pulse the wait ends at its timeout.
    await pulses.wait_past(pulses.count, 0.01)


def test_keyed_counts_cap_each_key_and_drop_empty_ones() -> None:
    counts = KeyedCounts(2)
    assert counts.try_take("a") and counts.try_take("a")
    assert not counts.try_take("a")  # a third is refused
    assert counts.try_take("b")  # another key has its own count
    counts.give_back("a")
    assert counts.try_take("a")
    for key in ("a", "a", "b"):
        counts.give_back(key)
    assert len(counts) == 0


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_one_go_per_key_and_interval() -> None:
    clock = _Clock()
    throttle = Throttle(30, clock)
    assert throttle.claim("a")
    assert throttle.claim("b")  # each key on its own
    clock.now += 29.9
    assert not throttle.claim("a")
    assert not throttle.claim("a")  # a refused claim does not restart the interval
    clock.now += 0.1
    assert throttle.claim("a")
    assert not throttle.claim("a")
    clock.now += 29.9
    assert not throttle.claim("a")  # counted from the last go, not the first


def test_throttle_keeps_only_the_keys_of_the_last_interval() -> None:
    clock = _Clock()
    throttle = Throttle(30, clock)
    for n in range(10_000):  # a tenant making one project after another, one a second
        assert throttle.claim(f"p{n}")
        assert len(throttle) <= 30  # those of the last 30 s: the older ones went
        clock.now += 1
    assert len(throttle) == 30
    clock.now += 29
    assert throttle.claim("late")
    assert len(throttle) == 1
    # A key that goes again moves to the back: pruning the front never drops it early.
    assert throttle.claim("first")
    clock.now += 20
    assert throttle.claim("second")
    clock.now += 20
    assert throttle.claim("third")  # "first" is 40 s old now, "second" 20 s
    assert len(throttle) == 2
    assert not throttle.claim("second")
