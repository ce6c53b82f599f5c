"""The v1 handlers, one module per domain. Importing this package attaches every handler to
the registry."""

from __future__ import annotations

import calchub.api.v1.messages  # noqa: F401  (definitions first)
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
