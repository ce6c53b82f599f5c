"""The pages' routes. `/` and a ticket's address also answer programs: a request that does
not ask for HTML (or carries an API key) gets the JSON it got before there were pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calchub.api import support_page
from calchub.web import pages

Endpoint = Callable[[Request], Awaitable[Response]]


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def negotiated(html: Endpoint, other: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if wants_html(request) and "authorization" not in request.headers:
            return await html(request)
        return await other(request)

    return endpoint


def web_routes(index_json: Endpoint) -> list[Route]:
    return [
        Route("/", negotiated(pages.landing, index_json), methods=["GET"]),
        Route("/app", pages.app_root, methods=["GET"]),
        Route("/app/sign-in", pages.sign_in_page, methods=["GET"]),
        Route("/app/sign-in", pages.sign_in_submit, methods=["POST"]),
        Route("/app/sign-out", pages.sign_out_submit, methods=["POST"]),
        Route("/app/keys", pages.keys_page, methods=["GET"]),
        Route("/app/keys", pages.keys_create, methods=["POST"]),
        Route("/app/keys/{key_id}/revoke", pages.keys_revoke, methods=["POST"]),
        Route("/app/sessions", pages.sessions_page, methods=["GET"]),
        Route("/app/sessions/end-others", pages.sessions_end_others, methods=["POST"]),
        Route("/app/sessions/{session_id}/end", pages.sessions_end, methods=["POST"]),
        Route("/app/forgot", pages.forgot_page, methods=["GET"]),
        Route("/app/forgot", pages.forgot_submit, methods=["POST"]),
        Route("/app/reset-password", pages.reset_submit, methods=["POST"]),
        Route("/auth/verify", pages.verify_page, methods=["GET"]),
        Route("/auth/verify", pages.verify_submit, methods=["POST"]),
        Route(
            "/support/tickets/{ticket_id}",
            negotiated(pages.ticket_page, support_page.ticket_page),
            methods=["GET"],
        ),
    ]
