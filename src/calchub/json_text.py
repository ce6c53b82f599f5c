"""A value that is JSON text already (e.g. a listing the database wrote), carried to the
response encoder, which puts it into the reply as it is instead of parsing and writing it
again."""

from __future__ import annotations


class JsonText:
    """UTF-8 JSON text of one value; whoever makes one vouches that it is valid JSON. Not a
    dataclass: orjson would write a dataclass's fields instead of asking the encoder."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"JsonText({self.text[:60]!r}...)"
