"""The v2 routes, declared once by path. A handler takes the call and the parsed body (a
JSON object) and returns the reply's JSON; it translates into one domain call, and the
domain's refusals become `{"error": message}` at the edge.

To add a route: decorate a handler with `@v2_route("group/name")` (`public=True` when
CoCalc serves it without a signed-in caller) in a module that `routes.py` imports. With
`@route(path, Model, description, response)` the handler gets the body validated against a
pydantic `Body` model instead, and the model, description and answer describe the route in
docs/api-v2.md and the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from calchub.actor import Actor
from calchub.errors import Invalid

if TYPE_CHECKING:
    from calchub.hub import Hub


@dataclass(frozen=True)
class V2Call:
    hub: Hub
    actor: Actor
    path: str


Handler = Callable[[V2Call, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class V2Route:
    path: str
    handler: Handler
    # Served to anonymous callers too (the handler or the domain decides what they get).
    public: bool
    # The body's fields, what the route does and what it answers, where declared.
    request: type[BaseModel] | None = None
    description: str = ""
    response: str = ""


ROUTES: dict[str, V2Route] = {}


def _add(route_def: V2Route) -> None:
    if route_def.path in ROUTES:
        raise RuntimeError(f"v2 route {route_def.path} declared twice")
    ROUTES[route_def.path] = route_def


def v2_route(path: str, *, public: bool = False) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        _add(V2Route(path, handler, public))
        return handler

    return decorate


class Body(BaseModel):
    """A v2 request body. Fields CoCalc's clients send that calchub has no use for
    (cocalc.com's compute servers, say) are ignored, as CoCalc ignores unknown ones."""

    model_config = ConfigDict(extra="ignore")


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


TypedHandler = Callable[[V2Call, Any], Awaitable[Any]]


def route(
    path: str,
    request: type[Body],
    description: str,
    response: str,
    *,
    public: bool = False,
) -> Callable[[TypedHandler], TypedHandler]:
    """A route whose body is validated against `request`; a field of the wrong type is a
    refusal naming it (`limit: Input should be a valid integer`)."""

    def decorate(handler: TypedHandler) -> TypedHandler:
        async def untyped(call: V2Call, body: dict[str, Any]) -> Any:
            try:
                message = request.model_validate(body)
            except ValidationError as exc:
                raise Invalid(validation_message(exc)) from None
            return await handler(call, message)

        _add(V2Route(path, untyped, public, request, description, response))
        return handler

    return decorate


# cocalc.com's commerce and infrastructure: answered, but not offered here.
SKIPPED_PREFIXES = (
    "purchases/",
    "billing/",
    "shopping/",
    "vouchers/",
    "compute/",
    "internal/",
    "news/",
    "salesloft/",
    "llm/",
    "openai/",
    "guesslang",
    "bookmarks/",
    "public-paths/",
    "token-action",
)
NOT_AVAILABLE = "not available on this server"


# CoCalc's auth/* sets and reads a browser's session cookie; here signing in, up and out
# happens on the web pages, and the API takes keys.
WEB_ONLY_PREFIX = "auth/"
WEB_ONLY = (
    "signing in and out is done on this server's web pages (/app/sign-in); "
    "the API authenticates with API keys"
)


def is_web_only(path: str) -> bool:
    return path.startswith(WEB_ONLY_PREFIX)


def is_skipped(path: str) -> bool:
    return any(path == p.rstrip("/") or path.startswith(p) for p in SKIPPED_PREFIXES)


def optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{key} must be a string")
    return value


def required_str(body: dict[str, Any], key: str) -> str:
    value = optional_str(body, key)
    if value is None:
        raise Invalid(f"{key} must be specified")
    return value


def optional_number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{key} must be a number")
    return float(value)
