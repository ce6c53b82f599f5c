"""The session cookie and the CSRF tokens of the forms.

Signed in, a form's token is derived from the session's token (which only the browser holds),
so it is bound to that session and needs no storage. Signed out (sign in, password reset),
it is the value of a separate random cookie, sent back in the form (double submit). Both are
compared in constant time.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from calchub.accounts.secret import random_base62, same
from calchub.accounts.sessions import SESSION_LIFETIME
from calchub.hub import Hub

SESSION_COOKIE = "calchub_session"
CSRF_COOKIE = "calchub_csrf"
CSRF_FIELD = "csrf_token"


def cookie_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")) or "/"


def _secure(hub: Hub) -> bool:
    return hub.settings.resolved_site_url.lower().startswith("https://")


def session_token(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")


def set_session_cookie(hub: Hub, request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=cookie_path(request),
        secure=_secure(hub),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(hub: Hub, request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=cookie_path(request),
        secure=_secure(hub),
        httponly=True,
        samesite="lax",
    )


def _bound_token(session: str) -> str:
    return hashlib.sha256(f"calchub-csrf:{session}".encode()).hexdigest()


def csrf_token(request: Request, *, signed_in: bool) -> str:
    """The token this request's forms carry; empty when a new CSRF cookie must be set
    (ensure_csrf_cookie)."""
    if signed_in:
        return _bound_token(session_token(request))
    return str(request.state.csrf) if hasattr(request.state, "csrf") else ""


def ensure_csrf_cookie(hub: Hub, request: Request) -> str:
    """The signed-out forms' token: the CSRF cookie's value, or a new one (set on the
    response by `finish`)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if len(current) == 32 and current.isalnum():
        request.state.csrf = current
    else:
        request.state.csrf = random_base62(32)
        request.state.new_csrf = True
    return str(request.state.csrf)


def finish(hub: Hub, request: Request, response: Response) -> Response:
    if getattr(request.state, "new_csrf", False):
        response.set_cookie(
            CSRF_COOKIE,
            str(request.state.csrf),
            path=cookie_path(request),
            secure=_secure(hub),
            httponly=True,
            samesite="strict",
        )
    return response


def csrf_ok(request: Request, sent: str, *, signed_in: bool) -> bool:
    if not sent:
        return False
    if signed_in:
        token = session_token(request)
        return bool(token) and same(sent, _bound_token(token))
    expected = request.cookies.get(CSRF_COOKIE, "")
    return bool(expected) and same(sent, expected)
