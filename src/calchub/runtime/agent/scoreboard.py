"""What the pool's workers are doing, kept where the pool reads it when it wakes.

Each worker owns a slot of a small memory file shared with the pool: its state, how many
requests it has answered, and when it last took or finished one. A worker writes its slot
as a request begins and ends; the pool reads every slot when it wakes (at least once a
second) instead of being woken by each request, which on a busy machine would take a CPU
from the request itself. A worker pokes the pool only when the pool must act at once: when
it took a request and fewer than `wanted` idle workers are left to accept the next one.
"""

from __future__ import annotations

import os
import struct

# KEPT: waiting for a hub's next request on the connection of its last one.
IDLE, BUSY, PING, FREE, KEPT = 0, 1, 2, 3, 4
STATES = {"idle": IDLE, "busy": BUSY, "ping": PING, "kept": KEPT}
NAMES = {code: name for name, code in STATES.items()}
# state, requests answered, monotonic time of the last request's start or end, monotonic
# time of the last user activity (a request other than a ping, at its start and its end).
SLOT = struct.Struct("=BxxxIdd")
# More workers than a project's default process limit allows; beyond them the pool forks
# no more, and requests wait for a worker to be free.
SLOTS = 512


class Slot:
    """One worker's view of its slot: it alone writes it while it runs."""

    def __init__(self, fd: int, index: int) -> None:
        self.fd = fd
        self.offset = index * SLOT.size
        self.state = IDLE
        self.gone = False
        self.answered = 0
        self.requested = 0.0
        self.active = 0.0

    def set(self, state: str, now: float) -> None:
        code = STATES[state]
        if code == BUSY or self.state == BUSY:
            self.active = now
        serving = code in (BUSY, PING)
        if serving or self.state in (BUSY, PING):
            # Only a request's start and end: waiting on a kept connection, or ending that
            # wait when the hub lets go or the worker retires, is no request, and must not
            # keep the pool from going quiet (it would fork workers again, and rest later).
            self.requested = now
        if not serving and self.state in (BUSY, PING):
            self.answered += 1
        self.state = code
        self._write()

    def leave(self) -> None:
        """Retiring: no longer counted as ready for the next request (the times of a request
        still being served are written all the same)."""
        self.gone = True
        self._write()

    def _write(self) -> None:
        state = FREE if self.gone else self.state
        data = SLOT.pack(state, self.answered, self.requested, self.active)
        os.pwrite(self.fd, data, self.offset)


class Scoreboard:
    """The pool's side: hands out slots and reads them."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("calchub-workers", os.MFD_CLOEXEC)
        os.pwrite(self.fd, SLOT.pack(FREE, 0, 0.0, 0.0) * SLOTS, 0)
        self.free = list(range(SLOTS - 1, -1, -1))

    def take(self) -> int | None:
        """A free slot, now an idle worker's; None when there is none."""
        if not self.free:
            return None
        index = self.free.pop()
        os.pwrite(self.fd, SLOT.pack(IDLE, 0, 0.0, 0.0), index * SLOT.size)
        return index

    def give_back(self, index: int) -> None:
        os.pwrite(self.fd, SLOT.pack(FREE, 0, 0.0, 0.0), index * SLOT.size)
        self.free.append(index)

    def read(self) -> list[tuple[int, int, float, float]]:
        """Every slot: (state, answered, requested, active)."""
        return list(SLOT.iter_unpack(os.pread(self.fd, SLOT.size * SLOTS, 0)))


def idle_count(fd: int) -> int:
    """How many workers are idle now (read by a worker, which holds the pool's file)."""
    return os.pread(fd, SLOT.size * SLOTS, 0)[:: SLOT.size].count(IDLE)
