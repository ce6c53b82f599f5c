"""Turning a request body into a validated message, with CoCalc's exact error strings.

CoCalc's `misc.defaults` walks the definition in order: a missing required field is reported
first, then any unexpected key. Absent and JSON `null` fields both take their default.
Form bodies carry only strings, so their values are first coerced to each field's type.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import ValidationError

from calchub.api.bodies import parse_json_text
from calchub.api.errors import ProtocolError
from calchub.api.v1.registry import Request
from calchub.ids import new_id


class InvalidParameters(ProtocolError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid parameters '{reason}'")


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _js(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _definition(model: type[Request]) -> dict[str, Any]:
    """The CoCalc-style definition object quoted in the `event` error."""
    shown: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.is_required():
            shown[name] = "__required__"
        elif info.default_factory is not None:
            shown[name] = info.default_factory()  # type: ignore[call-arg]
        elif info.default is not None:
            shown[name] = info.default
    return shown


def build_message(
    event: str, model: type[Request], body: dict[str, Any], *, from_form: bool
) -> tuple[Request, Any]:
    """Validate `body`; return the message and its id (given or a fresh uuid4)."""
    if "event" in body:
        opts = _js(body)
        obj = _js({**_definition(model), "event": event})
        raise InvalidParameters(
            "Error: ValueError: must not define 'event' when calling message creation "
            f"function (opts={opts}, obj={obj})"
        )
    present = {key: value for key, value in body.items() if value is not None}
    fields = model.model_fields
    for name, info in fields.items():
        if info.is_required() and name not in present:
            raise InvalidParameters(
                f"Error: misc.defaults -- TypeError: property '{name}' must be specified: "
            )
    for key in body:
        if key not in fields:
            raise InvalidParameters(
                f"Error: misc.defaults -- TypeError: got an unexpected argument '{key}' "
            )
    for name, value in present.items():
        if _has_nul(value):
            # PostgreSQL cannot store NUL in text, and no field of this API needs one.
            raise InvalidParameters(
                f"Error: misc.defaults -- TypeError: property '{name}' is invalid: "
                "strings must not contain NUL characters"
            )
    if from_form:
        coerced: dict[str, Any] = {}
        for name, value in present.items():
            try:
                coerced[name] = coerce_form_value(fields[name].annotation, value)
            except ValueError as exc:
                raise InvalidParameters(
                    f"Error: misc.defaults -- TypeError: property '{name}' is invalid: {exc}"
                ) from None
        present = coerced
    try:
        message = model.model_validate(present, strict=not from_form)
    except ValidationError as exc:
        raise InvalidParameters(_describe(exc)) from None
    if model.has_id:
        msg_id = present.get("id")
        return message, (msg_id if msg_id is not None else new_id())
    return message, new_id()


def _has_nul(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"] if not isinstance(part, int)) or "?"
    # Unions report one error per branch with the branch in `loc`; name only the field.
    field = str(first["loc"][0]) if first["loc"] else loc
    return f"Error: misc.defaults -- TypeError: property '{field}' is invalid: {first['msg']}"


def _base_types(annotation: Any) -> list[Any]:
    """Flatten Optional/Union/Annotated into their concrete members."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_base_types(arg))
        return out
    return [annotation]


def _blank_is_null(value: Any) -> Any:
    """In a structure built from bracketed form keys (`query[projects][title]=`), an empty
    value is `null`: a form has no other way to write one."""
    if isinstance(value, dict):
        return {key: _blank_is_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_blank_is_null(item) for item in value]
    return None if value == "" else value


def coerce_form_value(annotation: Any, value: Any) -> Any:
    """Coerce a form value (a string, or a list/dict of them) toward `annotation`."""
    members = _base_types(annotation)
    plain = {typing.get_origin(m) or m for m in members}
    structured = bool(plain & {dict, list, Any})
    if structured and isinstance(value, dict):
        return _blank_is_null(value)
    if structured and isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        # `-d 'query={"projects": ...}'`: a field that takes an object or array may carry
        # it as JSON text.
        try:
            return parse_json_text(value)
        except ValueError as exc:
            if Any in plain:
                return value  # a field that takes anything takes this text as it is
            raise ValueError(f"not valid JSON: {exc}") from None
    if dict in plain and str not in plain and Any not in plain and isinstance(value, str):
        shown = value if len(value) <= 60 else value[:60] + "..."
        raise ValueError(f"expected an object (as JSON text), got {shown!r}")
    if isinstance(value, list):
        if Any in plain and not (plain & {list}):
            return _blank_is_null(value)
        lists = [m for m in members if typing.get_origin(m) is list]
        if lists:
            (item_type,) = typing.get_args(lists[0]) or (Any,)
            return [coerce_form_value(item_type, item) for item in value]
        return value
    if not isinstance(value, str):
        return value
    if str in plain or Any in plain:
        return value
    lowered = value.strip().lower()
    if bool in plain:
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if int in plain:
        try:
            return int(value)
        except ValueError:
            pass
    if float in plain:
        try:
            return float(value)
        except ValueError:
            pass
    if list in plain:
        # One form value for an array field is a one-element array.
        lists = [m for m in members if typing.get_origin(m) is list]
        (item_type,) = typing.get_args(lists[0]) or (Any,)
        return [coerce_form_value(item_type, value)]
    return value
