"""KeyedLocks: one holder per key at a time, and nothing kept once a key is unused; KeyedCounts:
a cap per key; Pulses: waiters wake when the count moves, including a move they did not see
happen."""

from __future__ import annotations

import asyncio

from calchub.locks import KeyedCounts, KeyedLocks, Pulses


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
