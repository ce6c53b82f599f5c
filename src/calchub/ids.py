"""Identifiers: every account, project, copy and ticket id is a UUID in its text form."""

from __future__ import annotations

import re
import uuid

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_valid_uuid(value: object) -> bool:
    return isinstance(value, str) and bool(_UUID.match(value))


def new_id() -> str:
    return str(uuid.uuid4())
