"""The v1 handlers, one module per domain. Importing this package attaches every handler to
the registry."""

from __future__ import annotations

# The definitions first, and the shape of their replies.
from calchub.api.v1 import messages, replies  # noqa: F401
from calchub.api.v1.handlers import (  # noqa: F401
    accounts,
    billing,
    collaborators,
    copies,
    licenses,
    listings,
    projects,
    query,
    support,
    sync,
)
