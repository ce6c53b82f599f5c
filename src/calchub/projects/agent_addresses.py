"""The database's record of where running projects' agents answer (for runtimes whose
agents run on other machines): any hub reaches any project from it."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.db.tables import agent_addresses
from calchub.db.types import utcnow
from calchub.runtime.base import AgentAddress


class AgentAddressStore:
    """`AgentAddressBook` on the hubs' database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, project_id: str) -> AgentAddress | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(agent_addresses).where(agent_addresses.c.project_id == project_id)
                )
            ).first()
        if row is None:
            return None
        return AgentAddress(
            project_id=row.project_id,
            job_id=row.job_id,
            nonce=row.nonce,
            host=row.host,
            port=row.port,
            fingerprint=row.fingerprint,
        )

    async def put(self, address: AgentAddress) -> None:
        # Replaced whole in one transaction: a reader sees the old start or the new one.
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(agent_addresses).where(agent_addresses.c.project_id == address.project_id)
            )
            await conn.execute(
                insert(agent_addresses).values(
                    project_id=address.project_id,
                    job_id=address.job_id,
                    nonce=address.nonce,
                    host=address.host,
                    port=address.port,
                    fingerprint=address.fingerprint,
                    recorded=utcnow(),
                )
            )

    async def forget(self, project_id: str, nonce: str | None = None) -> None:
        query = delete(agent_addresses).where(agent_addresses.c.project_id == project_id)
        if nonce is not None:
            # Only that start's: a newer start recorded meanwhile stays.
            query = query.where(agent_addresses.c.nonce == nonce)
        async with self._engine.begin() as conn:
            await conn.execute(query)
