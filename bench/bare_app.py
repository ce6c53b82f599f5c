"""The baseline for bench/ping.py: the server stack of `calchub serve` (a Starlette app run by
uvicorn with the same options, its connections accepted by calchub's DrainingListener) with a
single route, POST /api/v1/ping, that answers a pong of the same shape as calchub's without
authentication, validation or a database.

    .venv/bin/python bench/bare_app.py --port 8090
    .venv/bin/python bench/bare_app.py --port 8090 --uvicorn-accept   # uvicorn.run as is
"""

from __future__ import annotations

import argparse
import json
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from calchub.listener import DrainingServer


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
    parser.add_argument(
        "--uvicorn-accept",
        action="store_true",
        help="let uvicorn's server accept connections (one per event loop turn with uvloop)",
    )
    args = parser.parse_args()
    options: dict[str, Any] = {
        "log_level": args.log_level,
        "access_log": True,
        "lifespan": "on",
        # calchub believes X-Forwarded-For only from proxies the operator names: none by
        # default, as in the benchmarks.
        "proxy_headers": False,
    }
    if args.uvicorn_accept:
        uvicorn.run(build_app(), host=args.host, port=args.port, **options)
        return
    # As calchub.cli._serve: its backlog, its listener, the HTTP protocol it derives from.
    sock = socket.create_server((args.host, args.port), backlog=2048)
    config = uvicorn.Config(
        build_app(), host=args.host, port=args.port, http=HttpToolsProtocol, **options
    )
    announcement = f"bare app listening on http://{args.host}:{args.port}"
    DrainingServer(config, sock, HttpToolsProtocol, announcement).run(sockets=[sock])


if __name__ == "__main__":
    main()
