"""Validation and permission rules for a set of `projects.users` (spec §2.7, with its
Recommendation: a non-admin changes only their own entry; membership changes go through the
collaborator endpoints)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from calchub.ids import is_valid_uuid
from calchub.licenses import upgrades as member_upgrades
from calchub.userquery.errors import QueryError, setting
from calchub.userquery.merge import deep_merge

UPGRADE_FIELDS = frozenset(member_upgrades.UPGRADE_FIELDS)
# Far above any real quota (memory and disk count in MB), and small enough for every backend.
MAX_UPGRADE = 10**9
ENTRY_FIELDS = ("group", "hide", "upgrades", "ssh_keys")
GROUPS = ("owner", "collaborator")

# calchub's own texts for what CoCalc leaves open (documented in the API reference).
MEMBERSHIP = "membership changes go through the collaborator endpoints"
OTHERS = "you may only change your own entry in users"
SSH_KEYS = "ssh_keys in a project's users map are not supported on this server"


def _check_entry(entry: dict[str, Any]) -> None:
    for key, value in entry.items():
        if key not in ENTRY_FIELDS:
            raise setting("users", f"unknown field '{key}")
        if key == "group" and value not in GROUPS:
            raise setting("users", "invalid value for field 'group'")
        if key == "hide" and not isinstance(value, bool):
            raise setting("users", "invalid type for field 'hide'")
        if key == "upgrades":
            if not isinstance(value, dict):
                raise setting("users", "invalid type for field 'upgrades'")
            for name, amount in value.items():
                if name not in UPGRADE_FIELDS:
                    raise setting("users", f"invalid upgrades field '{name}'")
                if amount is not None and (
                    isinstance(amount, bool) or not isinstance(amount, int | float)
                ):
                    raise setting("users", f"invalid upgrades field '{name}'")
                # A negative amount would count as upgrades handed back, to spend elsewhere.
                if amount is not None and not 0 <= amount <= MAX_UPGRADE:
                    raise setting(
                        "users", f"upgrades field '{name}' must be between 0 and {MAX_UPGRADE}"
                    )
        if key == "ssh_keys":
            raise setting("users", SSH_KEYS)


def validate(value: Any) -> dict[str, dict[str, Any]]:
    """The entries to apply; keys that are not uuids are dropped, as CoCalc does."""
    if not isinstance(value, dict):
        raise setting("users", "users must be an object")
    entries: dict[str, dict[str, Any]] = {}
    for account_id, entry in value.items():
        if not is_valid_uuid(account_id):
            continue
        if not isinstance(entry, dict):
            raise setting("users", MEMBERSHIP)
        _check_entry(entry)
        entries[account_id.lower()] = entry
    return entries


@dataclass(frozen=True)
class Member:
    group: str
    hide: bool
    upgrades: dict[str, Any]


def changes(
    entries: dict[str, dict[str, Any]],
    members: dict[str, Member],
    caller: str,
    is_admin: bool,
    available: Mapping[str, Any],
) -> dict[str, Member]:
    """The members whose row changes, with their new values; raises on anything not allowed.
    `available` is what the caller has left to apply as upgrades (licenses/upgrades.py)."""
    changed: dict[str, Member] = {}
    for account_id, entry in entries.items():
        current = members.get(account_id)
        if current is None or entry.get("group", current.group) != current.group:
            raise setting("users", MEMBERSHIP)
        upgrades = current.upgrades
        if "upgrades" in entry:
            upgrades = deep_merge(current.upgrades, entry["upgrades"])
        if upgrades != current.upgrades and not is_admin:
            if account_id != caller:
                raise QueryError(
                    f"FATAL: user '{caller}' tried to change user '{account_id}' "
                    "allocation toward a project"
                )
            why = member_upgrades.refusal(current.upgrades, upgrades, available)
            if why is not None:
                raise setting("users", why)
        hide = entry.get("hide", current.hide)
        if hide != current.hide and account_id != caller and not is_admin:
            raise setting("users", OTHERS)
        new = Member(current.group, hide, upgrades)
        if new != current:
            changed[account_id] = new
    return changed
