"""The services a running server shares between requests (built once, in the lifespan)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.config import Settings
from calchub.db.engine import create_engine, migrate
from calchub.mail import Mailer, mailer_from_settings
from calchub.site import SiteSettings


@dataclass
class Hub:
    settings: Settings
    engine: AsyncEngine
    mailer: Mailer
    site: SiteSettings

    @classmethod
    async def open(cls, settings: Settings) -> Hub:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.resolved_database_url)
        await migrate(engine)
        mailer = mailer_from_settings(settings.smtp_url or None, settings.data_dir)
        return cls(settings, engine, mailer, SiteSettings(engine, settings))

    async def close(self) -> None:
        await self.mailer.close()
        await self.engine.dispose()
