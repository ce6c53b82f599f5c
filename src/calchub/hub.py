"""The services a running server shares between requests (built once, in the lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from calchub import arrivals, hosttools, installs
from calchub.accounts.key_cache import KeyCache
from calchub.config import Settings
from calchub.datafolder import make_private
from calchub.db.counters import CounterReader, counter_reader_for
from calchub.db.engine import create_engine, migrate
from calchub.db.loop_reads import LoopReads
from calchub.locks import KeyedCounts, KeyedLocks, Pulses
from calchub.mail import Mailer, mailer_from_settings
from calchub.metrics import CountingMailer
from calchub.projects.agent_addresses import AgentAddressStore
from calchub.projects.aggregate import Aggregator
from calchub.projects.edits import ProjectEdits
from calchub.projects.quota_inputs import QuotaInputsStore
from calchub.runtime import ProjectRuntime, RuntimeOptions, build_runtime
from calchub.site import SiteSettings
from calchub.userquery.rendered_rows import RenderedRows

log = logging.getLogger("calchub")


# At most this many public reads of one client at once on one hub.
PUBLIC_READS_PER_CLIENT = 2


@dataclass
class Hub:
    settings: Settings
    engine: AsyncEngine
    mailer: Mailer
    site: SiteSettings
    runtime: ProjectRuntime
    # Change counters guarding what is kept in memory (db/counters.py).
    counters: CounterReader
    # Why copies between projects cannot run here (no rsync), or None when they can.
    copy_problem: str | None = None
    aggregator: Aggregator = field(default_factory=Aggregator)
    # One start at a time per project on this hub (the runtime serialises across hubs).
    start_locks: KeyedLocks = field(default_factory=KeyedLocks)
    # Copies this hub carries out at once.
    copy_runners: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    # Copies this hub finished: who waits for one wakes at once instead of at its next poll.
    copies_finished: Pulses = field(default_factory=Pulses)
    # Public reads (of files and listings) each client has under way on this hub, so that
    # one client cannot take every one-shot reader of stopped projects.
    public_reads: KeyedCounts = field(default_factory=lambda: KeyedCounts(PUBLIC_READS_PER_CLIENT))
    # API-key answers, reused while nothing that could change them has changed.
    key_cache: KeyCache = field(init=False)
    # Projects' quota inputs, kept in their rows while current.
    quota_inputs: QuotaInputsStore = field(init=False)
    # One-row reads without the engine's pool, for the checks every project call makes.
    loop_reads: LoopReads = field(init=False)
    # Projects' `last_edited`, written at most every 30 s per project by this hub.
    edits: ProjectEdits = field(init=False)
    # Rows listings wrote, reused while their versions are unchanged.
    rendered_rows: RenderedRows = field(default_factory=RenderedRows)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.key_cache = KeyCache(self.engine, self.counters)
        self.quota_inputs = QuotaInputsStore(self.engine)
        self.loop_reads = LoopReads(self.engine)
        self.edits = ProjectEdits(self.engine)

    @classmethod
    async def open(cls, settings: Settings) -> Hub:
        make_private(settings)
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrate(engine)
            install = await installs.claim(engine, settings)
        except BaseException:
            await engine.dispose()
            raise
        mailer = CountingMailer(
            mailer_from_settings(settings.smtp_url or None, settings.data_dir),
            "smtp" if settings.smtp_url.strip() else "outbox",
        )
        options = RuntimeOptions(
            projects_root=settings.resolved_projects_root,
            runtime_root=installs.runtime_root(settings, install),
            sandbox=not settings.unsandboxed_projects,
            disk=settings.project_disk,
            quiet_after_s=settings.project_quiet_after_s,
            addresses=AgentAddressStore(engine),
        )
        try:
            runtime = build_runtime(settings.runtime, options)
        except BaseException:
            await engine.dispose()
            raise
        counters = counter_reader_for(engine)
        site = SiteSettings(engine, settings, counters)
        return cls(settings, engine, mailer, site, runtime, counters)

    def check_runtime(self) -> None:
        """Decide (once, at server start) whether projects can run, and say so loudly."""
        self.copy_problem = hosttools.copy_problem()
        if self.copy_problem:
            log.warning("%s; projects still run", self.copy_problem)
        if problem := self.runtime.check():
            log.error("%s", problem)

    async def check_network(self) -> str | None:
        """Whether the network the site grants projects can be provided here; logged."""
        if await self.site.get("project_network") == "none":
            return None
        problem = self.runtime.network_problem()
        if problem:
            log.error("project_network is set, but %s", problem)
        return problem

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run work after the response is sent; keeps a reference so it is not collected.
        It serves no request: its counter reads are fresh (calchub/arrivals.py)."""
        context = contextvars.copy_context()
        context.run(arrivals.serving, None)
        task = asyncio.get_running_loop().create_task(coro, name=name, context=context)
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
        await self.edits.close()
        self.key_cache.clear()
        await self.counters.close()
        await self.loop_reads.close()
        await self.engine.dispose()
