"""API-key answers kept in memory while nothing that could change them has changed.

Every change that can alter a live key's answer — the key's deletion or edit, its account's
ban, deletion or groups — bumps the `auth_epoch` counter through database triggers, whoever
made it: this hub, another hub on the same database, or `calchub admin` beside them. An
answer is reused only when the counter, read afresh for this very request, still has the
value it was cached under, so a revocation refuses the next request on every hub (see
db/counters.py for how the counter is read: afresh, or by a read begun after the request
arrived).

Expiry is checked against the clock on every use. Project-scoped keys are never cached:
whether they work also depends on their creator's membership of the project.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.accounts.keys import KeyOwner, LiveKey, find_live_key, needs_use_recorded, record_use
from calchub.accounts.secret import digest
from calchub.db.counters import CounterReader, reader_if_triggers_exist
from calchub.db.types import utcnow

COUNTER = "auth_epoch"
MAX_ENTRIES = 10_000
# Made by migration 0011; looked for before the cache is trusted.
TRIGGERS = {
    "auth_epoch_api_keys_delete",
    "auth_epoch_api_keys_update",
    "auth_epoch_accounts_delete",
    "auth_epoch_accounts_update",
}


@dataclass
class _Entry:
    epoch: int
    live: LiveKey
    last_used: datetime


class KeyCache:
    def __init__(self, engine: AsyncEngine, reader: CounterReader) -> None:
        self._engine = engine
        self._reader = reader
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._checked = False

    async def lookup(self, key: str, arrival: int | None = None) -> KeyOwner | None:
        """The key's owner, for a request numbered `arrival` (calchub/arrivals.py) when
        given: the counter may then come from a read begun since that request arrived."""
        if not self._checked:
            await self._check_triggers()
        # The counter is read before the database: a change committed between the two leaves
        # the new entry under the old value, so it is never used.
        epoch = await self._reader.read(COUNTER, arrival)
        key_hash = digest(key)
        entry = self._entries.get(key_hash)
        now = utcnow()
        if entry is not None and entry.epoch == epoch and _unexpired(entry.live, now):
            self._entries.move_to_end(key_hash)
            if needs_use_recorded(entry.last_used, now):
                await record_use(self._engine, entry.live.key_id, now)
                entry.last_used = now
            return entry.live.owner
        self._entries.pop(key_hash, None)
        live = await find_live_key(self._engine, key)
        if live is None:
            return None
        if epoch is not None and live.owner.project_id is None:
            self._entries[key_hash] = _Entry(epoch, live, live.last_used)
            if len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return live.owner

    def clear(self) -> None:
        self._entries.clear()

    async def _check_triggers(self) -> None:
        self._reader = await reader_if_triggers_exist(
            self._engine, self._reader, TRIGGERS, "API keys are looked up on every request"
        )
        self._checked = True


def _unexpired(live: LiveKey, now: datetime) -> bool:
    return live.expire is None or live.expire > now
