"""`application/x-www-form-urlencoded` bodies with the bracket conventions of Node's `qs`:
`a=1&a=2` and `a[]=1&a[]=2` and `a[0]=1` are arrays, `a[b]=c` is an object."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

MAX_PARAMETERS = 1000
# Brackets in one key, and the largest array index: no message needs more, and both bound
# the work (and memory) one key can cost.
MAX_BRACKETS = 20
MAX_INDEX = MAX_PARAMETERS
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


class FormError(ValueError):
    pass


def parse_form(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormError("form body is not UTF-8") from exc
    pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    result: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            _put(result, key, value)
            continue
        name, brackets = match.group(1), _PART.findall(match.group(2))
        if len(brackets) > MAX_BRACKETS:
            raise FormError(f"form key {key[:60]!r} has more than {MAX_BRACKETS} brackets")
        _assign(result, name, brackets, value)
    return result


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if key in target:
        existing = target[key]
        target[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
    else:
        target[key] = value


def _assign(target: dict[str, Any], name: str, path: list[str], value: str) -> None:
    if not path:
        _put(target, name, value)
        return
    head, rest = path[0], path[1:]
    if head == "" or (head.isascii() and head.isdigit()):
        container = target.setdefault(name, [])
        if not isinstance(container, list):
            container = target[name] = [container]
        if rest:
            # a[0][b]=c: arrays of objects are rare in this API; keep them as objects by index.
            index = int(head) if head else len(container)
            if index > MAX_INDEX:
                raise FormError(f"array index {head} in form key {name!r} is above {MAX_INDEX}")
            while len(container) <= index:
                container.append({})
            if not isinstance(container[index], dict):
                raise FormError(f"conflicting form keys for {name!r}")
            _assign(container[index], rest[0], rest[1:], value)
        else:
            container.append(value)
        return
    child = target.setdefault(name, {})
    if not isinstance(child, dict):
        raise FormError(f"conflicting form keys for {name!r}")
    _assign(child, head, rest, value)
