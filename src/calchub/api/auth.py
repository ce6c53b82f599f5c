"""API keys in the Authorization header, resolved to the `Actor` every edge hands the domain."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from calchub import arrivals
from calchub.actor import Actor
from calchub.api.errors import ProtocolError
from calchub.hub import Hub

NO_KEY = "You must provide authentication via an API key."
WRONG_KEY = "No account found. Is your API key wrong?"
BANNED = "User is BANNED.  If this is a mistake, please contact {help_email}"


def key_from_header(header: str | None) -> str:
    """The key of `Authorization: Bearer <key>` or `Basic base64(<key>:)`, as CoCalc reads it."""
    if header is None:
        raise ProtocolError(NO_KEY)
    parts = header.split()
    kind = parts[0] if parts else "undefined"
    value = parts[1] if len(parts) > 1 else ""
    if kind == "Bearer":
        return value
    if kind == "Basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.split(":", 1)[0]
    raise ProtocolError(f"Unknown authorization type '{kind}'")


def client_ip(request: Request) -> str:
    # From the scope: `request.client` builds its named tuple on every access.
    client = request.scope.get("client")
    return str(client[0]) if client else ""


async def authenticate(hub: Hub, request: Request, *, public: bool) -> Actor:
    """The caller, from the request's key. A blank key is an anonymous caller where `public`
    allows it; anything else without a live key is refused."""
    ip = client_ip(request)
    key = key_from_header(request.headers.get("authorization"))
    if key == "" and public:
        return Actor.anonymous(ip)
    arrival = arrivals.arrival(request.scope)
    # Later counter reads for this request (site settings) may share the key check's read.
    arrivals.serving(arrival)
    found = await hub.key_cache.lookup(key, arrival)
    if found is None:
        raise ProtocolError(WRONG_KEY)
    if found.banned:
        raise ProtocolError(BANNED.format(help_email=await hub.site.get("help_email")))
    if found.project_id is not None:
        # A project key acts as its project alone: no account, no admin rights.
        return Actor(account_id=None, project_id=found.project_id, ip=ip)
    return Actor(account_id=found.account_id, is_admin=found.is_admin, ip=ip)
