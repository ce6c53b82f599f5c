"""The bridge's methods, declared once by name: each with its auth rule (what the hub bridge
does to `args` before the call) and its handler. Handlers take the call and the arguments
and return any JSON value; they translate into one domain call each.

To add a method: decorate a handler with `@hub_method("group.name", Auth.AUTH_FIRST)` or
`@project_method("group.name")` in a module that `methods.py` imports.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from calchub.actor import Actor
from calchub.errors import Invalid

if TYPE_CHECKING:
    from calchub.hub import Hub


class Auth(enum.Enum):
    """CoCalc's auth rules for hub methods (`conat/hub/api/util.ts`)."""

    # args[0] (created if missing) gets the caller's account_id, overriding the client's.
    AUTH_FIRST = "authFirst"
    # The same, and an account is required.
    AUTH_FIRST_REQUIRE_ACCOUNT = "authFirstRequireAccount"
    # args unchanged; an account is required.
    REQUIRE_ACCOUNT = "requireAccount"
    # args unchanged.
    NO_AUTH = "noAuth"


@dataclass(frozen=True)
class BridgeCall:
    hub: Hub
    actor: Actor
    name: str
    # The call's deadline in seconds, from the request's `timeout` (milliseconds).
    timeout_s: float
    # The project of a project-bridge call (the one the key or the body names).
    project_id: str | None = None


Handler = Callable[[BridgeCall, list[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    name: str
    auth: Auth
    handler: Handler


# The groups CoCalc's hub answers; a name outside them is an unknown function.
HUB_GROUPS = frozenset(
    {"system", "projects", "db", "purchases", "jupyter", "sync", "org", "messages"}
)
PROJECT_GROUPS = frozenset({"system", "editor", "sync"})

HUB_METHODS: dict[str, Method] = {}
PROJECT_METHODS: dict[str, Method] = {}


def _register(table: dict[str, Method], name: str, auth: Auth) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        if name in table:
            raise RuntimeError(f"bridge method {name} declared twice")
        table[name] = Method(name, auth, handler)
        return handler

    return decorate


def hub_method(name: str, auth: Auth) -> Callable[[Handler], Handler]:
    return _register(HUB_METHODS, name, auth)


def project_method(name: str) -> Callable[[Handler], Handler]:
    # No per-method auth in a project: a key that reaches it has full access to it.
    return _register(PROJECT_METHODS, name, Auth.NO_AUTH)


def first_arg(args: list[Any]) -> dict[str, Any]:
    """The one options object cocalc-api sends (`[{}]` when empty)."""
    if not args or args[0] is None:
        return {}
    if not isinstance(args[0], dict):
        raise Invalid("the first argument must be an object")
    return args[0]
