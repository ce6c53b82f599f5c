"""Health endpoints for process supervisors and load balancers.

/healthz  the process is alive and answering (touches nothing else: a slow database must not
          make a supervisor restart a healthy process)
/readyz   this hub can serve: its database answers a trivial query and projects can run.
          503 otherwise, naming which check failed (the reason goes to the log, not to
          whoever asks)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("calchub.health")

DATABASE_TIMEOUT_S = 5.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _database_ok(hub: Any) -> bool:
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_S):
            async with hub.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readyz: the database does not answer: %s", exc or type(exc).__name__)
        return False
    return True


async def readyz(request: Request) -> Response:
    hub = getattr(request.app.state, "hub", None)
    checks: dict[str, str] = {}
    checks["database"] = "ok" if hub is not None and await _database_ok(hub) else "failed"
    problem = hub.runtime.problem if hub is not None else "not started"
    checks["projects"] = "ok" if problem is None else "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
