"""The protocol's error envelopes, as the API tests expect them."""

from __future__ import annotations

from tests.harness import Reply

NO_ACCOUNT_KEY = {"error": "No account found. Is your API key wrong?"}


def missing(field: str) -> dict[str, str]:
    return {
        "error": "invalid parameters 'Error: misc.defaults -- TypeError: "
        f"property '{field}' must be specified: '"
    }


def unexpected(field: str) -> dict[str, str]:
    return {
        "error": "invalid parameters 'Error: misc.defaults -- TypeError: "
        f"got an unexpected argument '{field}' '"
    }


def assert_invalid(reply: Reply, field: str) -> None:
    assert reply.status == 400, reply.body
    assert reply["error"].startswith(
        f"invalid parameters 'Error: misc.defaults -- TypeError: property '{field}' is invalid"
    ), reply.body
