"""The pages' handlers: each reads its form, checks the CSRF token, makes one domain call and
renders the outcome. Sign-in, keys and tickets use the same domain code as the APIs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import Response

from calchub.accounts import api_keys, reset
from calchub.accounts.creation import verification_link_works, verify_email
from calchub.accounts.passwords import LENGTH_RULE
from calchub.accounts.sessions import (
    ID_LENGTH,
    Session,
    end_other_sessions,
    end_session,
    live_sessions,
    session_for,
    sign_in,
    sign_out,
)
from calchub.actor import Actor
from calchub.api.auth import client_ip
from calchub.api.bodies import read_body
from calchub.api.errors import ProtocolError
from calchub.db.types import utcnow
from calchub.errors import DomainError, Invalid, LimitExceeded, NotFound
from calchub.hub import Hub
from calchub.support.tickets import ticket_for
from calchub.web.cookies import (
    CSRF_FIELD,
    clear_session_cookie,
    csrf_ok,
    session_token,
    set_session_cookie,
)
from calchub.web.render import message, page, redirect, root

FORM_LIMIT = 16 * 1024
EXPIRY_CHOICES = (
    ("", "never"),
    ("7", "in 7 days"),
    ("30", "in 30 days"),
    ("90", "in 90 days"),
    ("365", "in a year"),
)
CSRF_FAILED = (
    "This form was not sent from this site, or the page is too old. Reload the page and try again."
)


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def current_session(request: Request) -> Session | None:
    token = session_token(request)
    return await session_for(_hub(request), token) if token else None


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form: the first value of each field."""
    raw = await read_body(request, FORM_LIMIT)
    fields: dict[str, str] = {}
    for name, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


async def _posted(request: Request, session: Session | None) -> dict[str, str] | Response:
    """The form, or the page that refuses it (too large, or without a valid CSRF token)."""
    try:
        form = await _form(request)
    except ProtocolError as exc:
        return await message(
            request, session=session, title="Too large", text=exc.message, status=exc.status
        )
    if not csrf_ok(request, form.get(CSRF_FIELD, ""), signed_in=session is not None):
        return await message(
            request, session=session, title="Please try again", text=CSRF_FAILED, status=403
        )
    return form


def _to_sign_in(request: Request) -> Response:
    here = request.url.path[len(root(request)) :] or "/"
    return redirect(request, "/app/sign-in?next=" + quote(here, safe="/"))


async def _signed_in_post(request: Request) -> tuple[Session, dict[str, str]] | Response:
    """The signed-in caller and their form, or the response that turns them away: to sign
    in first (before the body is read), or the page that refuses the form."""
    session = await current_session(request)
    if session is None:
        return _to_sign_in(request)
    form = await _posted(request, session)
    if isinstance(form, Response):
        return form
    return session, form


def _safe_next(value: str) -> str:
    """Only a path of this site (no other host, no scheme) is followed after signing in."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/app/keys"


# -- landing -----------------------------------------------------------------------------


async def landing(request: Request) -> Response:
    return await page(
        request,
        "landing.html",
        session=await current_session(request),
        title=await _hub(request).site.get("site_name"),
    )


# -- signing in and out ---------------------------------------------------------------------


async def app_root(request: Request) -> Response:
    """`/app`: the forgot-password email's link (`?forgot=<code>`), else the keys page."""
    session = await current_session(request)
    code = request.query_params.get("forgot")
    if code is not None:
        return await page(
            request,
            "reset.html",
            session=session,
            title="Set a new password",
            code=code[:200],
            rule=LENGTH_RULE,
        )
    return redirect(request, "/app/keys" if session else "/app/sign-in")


async def sign_in_page(request: Request) -> Response:
    session = await current_session(request)
    wanted = _safe_next(request.query_params.get("next", ""))
    if session is not None:
        return redirect(request, wanted)
    return await page(request, "sign_in.html", session=None, title="Sign in", email="", next=wanted)


async def sign_in_submit(request: Request) -> Response:
    form = await _posted(request, None)
    if isinstance(form, Response):
        return form
    email, wanted = form.get("email", ""), _safe_next(form.get("next", ""))
    hub = _hub(request)
    try:
        token, _ = await sign_in(
            hub, email=email, password=form.get("password", ""), ip=client_ip(request)
        )
    except DomainError as exc:
        status = 429 if isinstance(exc, LimitExceeded) else 400 if isinstance(exc, Invalid) else 401
        return await page(
            request,
            "sign_in.html",
            session=None,
            status=status,
            title="Sign in",
            error=str(exc),
            email=email[:254],
            next=wanted,
        )
    response = redirect(request, wanted)
    set_session_cookie(hub, request, response, token)
    return response


async def sign_out_submit(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return redirect(request, "/")
    form = await _posted(request, session)
    if isinstance(form, Response):
        return form
    hub = _hub(request)
    await sign_out(hub, session_token(request))
    response = redirect(request, "/")
    clear_session_cookie(hub, request, response)
    return response


# -- API keys ------------------------------------------------------------------------------


async def _keys_page(
    request: Request, session: Session, *, status: int = 200, **context: Any
) -> Response:
    hub = _hub(request)
    keys = await api_keys.made_by_caller(hub, session.actor(client_ip(request)))
    context.setdefault("form", {"name": "", "expire_days": "", "project_id": ""})
    return await page(
        request,
        "keys.html",
        session=session,
        status=status,
        title="API keys",
        keys=keys,
        expiry_choices=EXPIRY_CHOICES,
        site_url=hub.settings.resolved_site_url,
        **context,
    )


async def keys_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return _to_sign_in(request)
    return await _keys_page(request, session)


async def keys_create(request: Request) -> Response:
    posted = await _signed_in_post(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    entered = {
        "name": form.get("name", "")[:200],
        "expire_days": form.get("expire_days", ""),
        "project_id": form.get("project_id", "").strip()[:100],
    }
    days = entered["expire_days"]
    if days not in {choice for choice, _ in EXPIRY_CHOICES}:
        return await _keys_page(
            request, session, status=400, error="Choose when the key expires.", form=entered
        )
    expire = utcnow() + timedelta(days=int(days)) if days else None
    try:
        created = await api_keys.create(
            _hub(request),
            session.actor(client_ip(request)),
            name=entered["name"],
            expire=expire,
            project_id=entered["project_id"] or None,
        )
    except DomainError as exc:
        return await _keys_page(request, session, status=400, error=str(exc), form=entered)
    return await _keys_page(request, session, created=created)


async def keys_revoke(request: Request) -> Response:
    posted = await _signed_in_post(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    raw = request.path_params["key_id"]
    if not raw.isdigit() or len(raw) > 18:
        return await _keys_page(request, session, status=404, error="There is no such key.")
    try:
        await api_keys.delete(
            _hub(request),
            session.actor(client_ip(request)),
            int(raw),
            project_id=form.get("project_id") or None,
        )
    except DomainError as exc:
        return await _keys_page(request, session, status=400, error=str(exc))
    return await _keys_page(request, session, notice="The key is revoked.")


# -- sessions ------------------------------------------------------------------------------


async def _sessions_page(
    request: Request, session: Session, *, status: int = 200, **context: Any
) -> Response:
    return await page(
        request,
        "sessions.html",
        session=session,
        status=status,
        title="Where you are signed in",
        sessions=await live_sessions(_hub(request), session.account_id),
        current=session.id,
        **context,
    )


async def sessions_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return _to_sign_in(request)
    return await _sessions_page(request, session)


async def sessions_end(request: Request) -> Response:
    """End one of the account's sessions; ending this browser's own is signing out."""
    posted = await _signed_in_post(request)
    if isinstance(posted, Response):
        return posted
    session, _ = posted
    hub = _hub(request)
    raw = request.path_params["session_id"]
    if raw == session.id:
        await sign_out(hub, session_token(request))
        response = redirect(request, "/app/sign-in")
        clear_session_cookie(hub, request, response)
        return response
    if (
        not raw.isalnum()
        or len(raw) > ID_LENGTH
        or not await end_session(hub, session.account_id, raw)
    ):
        return await _sessions_page(request, session, status=404, error="There is no such session.")
    return await _sessions_page(request, session, notice="That browser is signed out.")


async def sessions_end_others(request: Request) -> Response:
    posted = await _signed_in_post(request)
    if isinstance(posted, Response):
        return posted
    session, _ = posted
    ended = await end_other_sessions(_hub(request), session.account_id, session.id)
    notice = (
        "Every other browser is signed out." if ended else "You were not signed in anywhere else."
    )
    return await _sessions_page(request, session, notice=notice)


# -- forgotten passwords ---------------------------------------------------------------------


async def forgot_page(request: Request) -> Response:
    return await page(
        request,
        "forgot.html",
        session=await current_session(request),
        title="Forgot your password?",
        email="",
    )


async def forgot_submit(request: Request) -> Response:
    session = await current_session(request)
    form = await _posted(request, session)
    if isinstance(form, Response):
        return form
    email = form.get("email", "")
    try:
        await reset.forgot_password(_hub(request), Actor.anonymous(client_ip(request)), email)
    except NotFound:
        pass  # Said the same way as a sent link: the page tells nobody who has an account.
    except DomainError as exc:
        status = 429 if isinstance(exc, LimitExceeded) else 400
        return await page(
            request,
            "forgot.html",
            session=session,
            status=status,
            title="Forgot your password?",
            error=str(exc),
            email=email[:254],
        )
    return await message(
        request,
        session=session,
        title="Check your email",
        text=f"If {email} is the address of an account here, a link to set a new password "
        "is on its way to it.",
    )


async def reset_submit(request: Request) -> Response:
    session = await current_session(request)
    form = await _posted(request, session)
    if isinstance(form, Response):
        return form
    code = form.get("code", "")
    try:
        await reset.reset_forgot_password(_hub(request), code, form.get("new_password", ""))
    except DomainError as exc:
        if str(exc) == reset.NO_LONGER_VALID:
            return await message(
                request,
                session=session,
                title="This link has expired",
                status=400,
                text=f"{exc} Ask for a new link.",
                link=("/app/forgot", "Send a new link"),
            )
        return await page(
            request,
            "reset.html",
            session=session,
            status=400,
            title="Set a new password",
            error=str(exc),
            code=code[:200],
            rule=LENGTH_RULE,
        )
    # The reset signed every browser out, this one too.
    response = await message(
        request,
        session=None,
        title="Your password is changed",
        text="Sign in with your new password.",
        link=("/app/sign-in", "Sign in"),
    )
    clear_session_cookie(_hub(request), request, response)
    return response


# -- email verification ------------------------------------------------------------------------


async def _link_refused(request: Request, session: Session | None) -> Response:
    # Said the same way for every reason (no such address, a wrong, used or expired token),
    # so the page tells nobody without the token anything about the address. These pages
    # cannot send a new link; the API can, for the account's own key.
    return await message(
        request,
        session=session,
        status=400,
        title="This link does not work",
        text="This verification link is not valid (any more). It works once, for 24 hours "
        "after it was sent, and only for the address the account has now. To get a new "
        "link, ask for a new verification email: the REST API call "
        "accounts/send-verification-email, made with the account's API key, sends one.",
    )


async def verify_page(request: Request) -> Response:
    """The welcome (or address change) email's link: it only asks. Mail gateways open every
    link of a message, so opening it must not verify anything: the button (a POST) does."""
    session = await current_session(request)
    email = request.query_params.get("email", "")
    token = request.query_params.get("token", "")
    if not await verification_link_works(_hub(request), email, token):
        return await _link_refused(request, session)
    return await page(
        request,
        "verify.html",
        session=session,
        title="Verify your email address",
        email=email.lower(),
        token=token,
    )


async def verify_submit(request: Request) -> Response:
    """The verification page's button. Verifying the address carries out the invitations that
    were waiting for it."""
    session = await current_session(request)
    form = await _posted(request, session)
    if isinstance(form, Response):
        return form
    email = form.get("email", "")
    if not await verify_email(_hub(request), email, form.get("token", "")):
        return await _link_refused(request, session)
    return await message(
        request,
        session=session,
        title="Email address verified",
        text=f"Thank you: {email.lower()} is verified. Invitations to projects that were "
        "sent to it are now yours.",
        link=None if session else ("/app/sign-in", "Sign in"),
    )


# -- support tickets ---------------------------------------------------------------------------


async def ticket_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return _to_sign_in(request)
    raw = request.path_params["ticket_id"]
    ticket = None
    if raw.isdigit() and len(raw) <= 18:
        ticket = await ticket_for(_hub(request), session.actor(client_ip(request)), int(raw))
    if ticket is None:
        return await message(
            request,
            session=session,
            status=404,
            title="No such support ticket",
            text="There is no support ticket here with this number for your account.",
        )
    return await page(
        request,
        "ticket.html",
        session=session,
        title=f"Support ticket #{ticket['id']}",
        ticket=ticket,
    )
