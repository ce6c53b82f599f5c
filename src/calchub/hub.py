"""The services a running server shares between requests (built once, in the lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from calchub import hosttools
from calchub.config import Settings
from calchub.db.engine import create_engine, migrate
from calchub.mail import Mailer, mailer_from_settings
from calchub.metrics import CountingMailer
from calchub.projects.aggregate import Aggregator
from calchub.runtime import LocalRuntime, ProjectRuntime
from calchub.site import SiteSettings

log = logging.getLogger("calchub")


@dataclass
class Hub:
    settings: Settings
    engine: AsyncEngine
    mailer: Mailer
    site: SiteSettings
    runtime: ProjectRuntime
    # Why projects cannot run here (no sandbox), or None when they can.
    runtime_problem: str | None = None
    # Why copies between projects cannot run here (no rsync), or None when they can.
    copy_problem: str | None = None
    aggregator: Aggregator = field(default_factory=Aggregator)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def open(cls, settings: Settings) -> Hub:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        mailer = CountingMailer(
            mailer_from_settings(settings.smtp_url or None, settings.data_dir),
            "smtp" if settings.smtp_url.strip() else "outbox",
        )
        runtime = LocalRuntime(
            settings.resolved_projects_root,
            settings.resolved_runtime_root,
            sandbox=not settings.unsandboxed_projects,
        )
        hub = cls(settings, engine, mailer, SiteSettings(engine, settings), runtime)
        return hub

    def check_runtime(self) -> None:
        """Decide (once, at server start) whether projects can run, and say so loudly."""
        self.copy_problem = hosttools.copy_problem()
        if self.copy_problem:
            log.warning("%s; projects still run", self.copy_problem)
        if self.settings.unsandboxed_projects:
            return
        assert isinstance(self.runtime, LocalRuntime)
        # Named here by the package that ships each program, before the runtime's own probe.
        reason = hosttools.sandbox_tools_problem()
        if reason is None:
            check = self.runtime.check_available()
            reason = None if check.available else check.reason
        if reason is not None:
            self.runtime_problem = (
                f"projects cannot run on this server: {reason}; an operator may start "
                "it with --unsandboxed-projects to run them without isolation"
            )
            log.error("%s", self.runtime_problem)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run work after the response is sent; keeps a reference so it is not collected."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background work %r failed", task.get_name(), exc_info=exc)

    def wake_scheduler(self) -> None:
        self._wake.set()

    async def sleep_or_wake(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.runtime.close()
        await self.mailer.close()
        await self.engine.dispose()
