"""Rendering the pages: Jinja templates with autoescaping, the site's name and URL prefix in
every page, and headers that keep the pages to themselves (no framing, no scripts or styles
but their own, no referrer carrying a reset code elsewhere)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from calchub.accounts.sessions import Session, display_name
from calchub.hub import Hub
from calchub.web.cookies import csrf_token, ensure_csrf_cookie, finish

_ENV = Environment(
    loader=PackageLoader("calchub.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: Any, empty: str = "") -> str:
    """A moment as people read it: 2026-11-30 14:05 UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if not isinstance(value, datetime):
        return empty
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_ENV.filters["when"] = _when


def root(request: Request) -> str:
    """The URL prefix every link of a page starts with ('' at the root)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _headers(response: Response, nonce: str) -> None:
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    # Pages show keys, codes and tickets: nothing of them belongs in a shared cache.
    response.headers["Cache-Control"] = "no-store"


async def page(
    request: Request,
    template: str,
    *,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> Response:
    hub: Hub = request.app.state.hub
    if session is None:
        ensure_csrf_cookie(hub, request)
    nonce = secrets.token_urlsafe(16)
    html = _ENV.get_template(template).render(
        site_name=await hub.site.get("site_name"),
        root=root(request),
        account=session,
        account_name=display_name(session) if session else "",
        csrf=csrf_token(request, signed_in=session is not None),
        nonce=nonce,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    _headers(response, nonce)
    return finish(hub, request, response)


async def message(
    request: Request,
    *,
    session: Session | None,
    title: str,
    text: str,
    status: int = 200,
    link: tuple[str, str] | None = None,
) -> Response:
    """A page that says one thing (and perhaps where to go next)."""
    return await page(
        request,
        "message.html",
        session=session,
        status=status,
        title=title,
        text=text,
        link=link,
    )


def redirect(request: Request, path: str) -> Response:
    """See other: `path` is below the URL prefix."""
    response = RedirectResponse(root(request) + path, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response
