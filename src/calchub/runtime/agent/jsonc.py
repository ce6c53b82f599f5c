"""JSON through the interpreter's C codec (`_json`, the accelerator the json module itself
uses), without importing json: its decoder compiles regular expressions when imported,
which brings `re` into every project's start. Reads what json.loads reads and writes what
json.dumps(ensure_ascii=False, separators=(",", ":")) writes. An interpreter whose `_json`
differs gets the json module instead.
"""

from __future__ import annotations

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_SPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Options:
    """What the C scanner reads from a json.JSONDecoder: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _unencodable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _c_codec() -> tuple[Callable[[str | bytes | bytearray], Any], Callable[[Any], str]]:
    import _json

    scan = _json.make_scanner(_Options())  # type: ignore[arg-type]  # reads these attributes
    # markers (None: no check for circular references, which a message never has, and no
    # state kept between calls), default, string encoder, indent, key separator, item
    # separator, sort_keys, skipkeys, allow_nan: json.dumps's, with the separators above.
    encode = _json.make_encoder(
        None, _unencodable, _json.encode_basestring, None, ":", ",", False, False, True
    )

    def loads(data: str | bytes | bytearray) -> Any:
        text = data.decode() if isinstance(data, (bytes, bytearray)) else data
        start = len(text) - len(text.lstrip(_SPACE))
        try:
            value, end = scan(text, start)
        except StopIteration:
            raise ValueError(f"Expecting value at {start}") from None
        if text[end:].strip(_SPACE):
            raise ValueError(f"Extra data at {end}")
        return value

    def dumps(value: Any) -> str:
        return "".join(encode(value, 0))

    if loads('{"a": [1, 2.5, "\\u00e9", null, true]} ') != {"a": [1, 2.5, "é", None, True]}:
        raise ValueError("unexpected _json")
    if dumps({"a": [1, "é", None]}) != '{"a":[1,"é",null]}':
        raise ValueError("unexpected _json")
    return loads, dumps


def _json_module() -> tuple[Callable[[str | bytes | bytearray], Any], Callable[[Any], str]]:
    import json

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    return json.loads, dumps


try:
    loads, dumps = _c_codec()
except Exception:
    loads, dumps = _json_module()
