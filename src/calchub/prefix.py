"""Serving under a URL prefix (e.g. https://example.org/calchub/) behind a reverse proxy.

Proxies differ in whether they pass the prefix on (`proxy_pass http://hub;`) or strip it
(`proxy_pass http://hub/;`); both work. Every request gets the prefix as its ASGI
`root_path`, so routing sees the same paths either way and URLs built from a request carry
the prefix. Links in emails take it from the settings (`Settings.resolved_site_url`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class UrlPrefix:
    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.prefix:
            path: str = scope["path"]
            scope = dict(scope, root_path=self.prefix)
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                # Stripped by the proxy: put it back so the request's URL is the public one.
                scope["path"] = self.prefix + path
                scope["raw_path"] = self.prefix.encode() + scope.get("raw_path", path.encode())
        await self.app(scope, receive, send)
