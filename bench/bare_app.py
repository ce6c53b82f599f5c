"""The baseline for bench/ping.py: the server stack of `calchub serve` (a Starlette app run by
uvicorn with the same options) with a single route, POST /api/v1/ping, that answers a pong of
the same shape as calchub's without authentication, validation or a database.

    .venv/bin/python bench/bare_app.py --port 8090
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _now() -> str:
    value = datetime.now(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


async def ping(request: Request) -> Response:
    await request.body()
    pong = {"event": "pong", "id": str(uuid.uuid4()), "now": _now()}
    body = json.dumps(pong, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(body, media_type="application/json")


def build_app() -> Starlette:
    return Starlette(routes=[Route("/api/v1/ping", ping, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    # The same call as calchub.cli._serve.
    uvicorn.run(
        build_app(),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=True,
        lifespan="on",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )


if __name__ == "__main__":
    main()
