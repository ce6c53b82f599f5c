"""New ids are random version 4 UUIDs in the text form every id has."""

from __future__ import annotations

import uuid

from calchub.ids import is_valid_uuid, new_id


def test_new_ids_are_random_version_4_uuids() -> None:
    made = [new_id() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for text in made:
        assert is_valid_uuid(text)
        value = uuid.UUID(text)
        assert str(value) == text
        assert value.version == 4
        assert value.variant == uuid.RFC_4122
    # Every hexadecimal digit outside the fixed version and variant bits turns up everywhere.
    for position in (0, 9, 15, 20, 35):
        assert len({text[position] for text in made}) == 16
    assert {text[19] for text in made} == set("89ab")
