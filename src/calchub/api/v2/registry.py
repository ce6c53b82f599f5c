"""The v2 routes, declared once by path. A handler takes the call and the parsed body (a
JSON object) and returns the reply's JSON; it translates into one domain call, and the
domain's refusals become `{"error": message}` at the edge.

To add a route: decorate a handler with `@v2_route("group/name")` (`public=True` when
CoCalc serves it without a signed-in caller) in a module that `routes.py` imports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


ROUTES: dict[str, V2Route] = {}


def v2_route(path: str, *, public: bool = False) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        if path in ROUTES:
            raise RuntimeError(f"v2 route {path} declared twice")
        ROUTES[path] = V2Route(path, handler, public)
        return handler

    return decorate


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
