"""The scoreboard the agent's workers keep their state on, which the pool reads."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from calchub.runtime.agent.scoreboard import (
    BUSY,
    FREE,
    IDLE,
    KEPT,
    PING,
    SLOTS,
    Scoreboard,
    Slot,
    idle_count,
)


@pytest.fixture
def board() -> Iterator[Scoreboard]:
    board = Scoreboard()
    try:
        yield board
    finally:
        os.close(board.fd)


def taken_slot(board: Scoreboard) -> tuple[int, Slot]:
    """A slot taken as the pool takes one for a new worker, and the worker's view of it."""
    index = board.take()
    assert index is not None
    return index, Slot(board.fd, index)


def test_slots_start_free_and_a_taken_one_is_idle(board: Scoreboard) -> None:
    assert idle_count(board.fd) == 0
    assert {state for state, *_ in board.read()} == {FREE}
    first, second = board.take(), board.take()
    assert first is not None and second is not None and first != second
    assert board.read()[first] == (IDLE, 0, 0.0, 0.0)
    assert idle_count(board.fd) == 2
    board.give_back(first)
    assert board.read()[first][0] == FREE
    assert idle_count(board.fd) == 1


def test_there_are_only_so_many_slots(board: Scoreboard) -> None:
    taken = [board.take() for _ in range(SLOTS)]
    assert None not in taken
    assert board.take() is None
    board.give_back(taken[7])  # type: ignore[arg-type]
    assert board.take() == taken[7]


def test_a_request_is_activity_from_its_start_to_its_end(board: Scoreboard) -> None:
    index, slot = taken_slot(board)
    slot.set("busy", 10.0)
    assert board.read()[index] == (BUSY, 0, 10.0, 10.0)
    assert idle_count(board.fd) == 0
    slot.set("idle", 12.5)
    assert board.read()[index] == (IDLE, 1, 12.5, 12.5)


def test_a_ping_is_a_request_but_not_activity(board: Scoreboard) -> None:
    index, slot = taken_slot(board)
    slot.set("ping", 3.0)
    assert board.read()[index] == (PING, 0, 3.0, 0.0)
    slot.set("idle", 4.0)
    assert board.read()[index] == (IDLE, 1, 4.0, 0.0)


def test_a_retiring_worker_is_not_counted_idle_but_its_last_request_counts(
    board: Scoreboard,
) -> None:
    index, slot = taken_slot(board)
    slot.set("busy", 5.0)
    slot.leave()  # told to retire while serving: it finishes the request first
    slot.set("idle", 6.0)
    assert board.read()[index] == (FREE, 1, 6.0, 6.0)
    assert idle_count(board.fd) == 0


def test_waiting_on_a_kept_connection_is_neither_idle_nor_a_request(board: Scoreboard) -> None:
    index, slot = taken_slot(board)
    slot.set("busy", 1.0)
    slot.set("idle", 2.0)
    slot.set("kept", 2.0)
    assert board.read()[index] == (KEPT, 1, 2.0, 2.0)
    assert idle_count(board.fd) == 0
    slot.set("idle", 9.0)  # the hub let go of it, or the worker retires
    assert board.read()[index] == (IDLE, 1, 2.0, 2.0)


def test_going_idle_without_a_request_is_not_a_request(board: Scoreboard) -> None:
    index, slot = taken_slot(board)
    slot.set("busy", 1.0)
    slot.set("idle", 2.0)
    slot.set("idle", 7.0)
    assert board.read()[index] == (IDLE, 1, 2.0, 2.0)
