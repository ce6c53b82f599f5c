"""How a user-query table is described (spec §5.1): which fields a caller may read and write,
their defaults, the row scope, the field rules and the hooks. The tables themselves live in
`calchub.userquery.tables`; `calchub.userquery.registry` collects them."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.access import GROUPS_THAT_READ
from calchub.db.json_sql import Written

if TYPE_CHECKING:
    from calchub.userquery.context import Caller
    from calchub.userquery.parse import SingleQuery


class Scope(enum.Enum):
    """Which rows a get may see (spec §2.2, as an enum rather than SQL)."""

    ALL = "all"  # no restriction (public or admin-only tables)
    OWN_ACCOUNT = "own_account"  # the caller's own account row
    MEMBER_PROJECTS = "member_projects"  # the 'projects' keyword
    PROJECT_MEMBER = "project_member"  # 'project_id' required; members and admins
    PROJECT_ANY = "project_any"  # 'project_id' required; any caller (anonymous table)
    PROJECT_PUBLIC = "project_public"  # 'project_id-public': the project has public paths
    COLLABORATORS = "collaborators"  # accounts sharing a project with the caller
    PROJECT_COLLABORATORS = "project_collaborators"  # accounts of one given project


class Rule(enum.Enum):
    """How a set treats a field (spec §2.3)."""

    ALLOW = "allow"
    ADMIN = "admin"  # calchub: settable by admins only
    ACCOUNT_ID = "account_id"  # always the caller's id
    PROJECT_WRITE = "project_write"  # the project must exist; writers and admins
    PROJECT_OWNER = "project_owner"  # the project must exist; its owner and admins
    PROJECT_CLIENT = "project_client"  # only a project may set it: never over HTTP
    COMPUTED = "computed"  # see TableSpec.computed


@dataclass
class SetContext:
    """What a set hook sees and may change, inside the set's transaction."""

    conn: AsyncConnection
    caller: Caller
    spec: TableSpec
    query: dict[str, Any]
    old: Any  # the stored row, or None when the set inserts
    values: dict[str, Any]  # the columns about to be written
    # Work that must wait until the transaction has committed (e.g. asking for a start).
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass(frozen=True)
class GetContext:
    conn: AsyncConnection
    caller: Caller
    spec: TableSpec
    query: SingleQuery
    options: list[dict[str, Any]]


# Loads the value of a field that is not a column, for each fetched row.
EdgeLoader = Callable[[AsyncConnection, "Caller", list[Any]], Awaitable[list[Any]]]
# The same value as SQL writing its JSON text (NULL for null), given the dialect's name.
EdgeJson = Callable[[str], Written]
GetCheck = Callable[[AsyncConnection, "Caller", dict[str, Any]], Awaitable[None]]
# A set's check hook (spec §1.8 step 8): may reject the query or normalise its values.
SetCheck = Callable[[AsyncConnection, "Caller", dict[str, Any]], Awaitable[None]]
# Conditions that read the query itself, e.g. an input-only field such as a maximum age.
QueryWhere = Callable[[Table, "Caller", dict[str, Any]], list[Any]]
InsteadOfGet = Callable[[GetContext], Awaitable[dict[str, Any]]]
SetHook = Callable[[SetContext], Awaitable[None]]
Computed = Callable[[dict[str, Any], "Caller"], Any]


@dataclass(frozen=True)
class TableSpec:
    name: str
    storage: Table
    primary_key: tuple[str, ...]
    get_fields: dict[str, Any] = field(default_factory=dict)  # field -> default; {}: no gets
    set_fields: dict[str, Rule] = field(default_factory=dict)  # in rule order; {}: no sets
    scope: Scope = Scope.ALL
    # Who counts as a member for the scope (e.g. writers only for invite tokens).
    read_groups: frozenset[str] = GROUPS_THAT_READ
    get_admin: bool = False
    set_admin: bool = False
    delete: bool = False
    # Every set deletes, as if `{delete: true}` had been sent (syncstrings_delete).
    always_delete: bool = False
    # Map fields: deep-merged on set (spec §4.1). Other JSON columns (arrays) are replaced.
    json_fields: frozenset[str] = frozenset()
    # Only rows whose `field` is within `window` of now (e.g. projects' 21 days).
    recent: tuple[str, timedelta] | None = None
    default_options: list[dict[str, Any]] = field(default_factory=list)
    # Query fields that are inputs to the scope only: neither selected nor filtered.
    remove_from_query: frozenset[str] = frozenset()
    # Fields assembled from other tables rather than read from a column.
    edges: dict[str, EdgeLoader] = field(default_factory=dict)
    # The columns each edge reads from its rows; an edge not listed gets every column.
    edge_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Whether the database may write the array form of a get as JSON text (json_rows.py),
    # and the SQL of the edges it can write.
    json_rows: bool = False
    edge_json: dict[str, EdgeJson] = field(default_factory=dict)
    # Extra conditions on the storage table for this caller (e.g. hide withdrawn paths).
    where: Callable[[Table, Caller], list[Any]] | None = None
    # Fields whose text is silently cut to this length on set.
    truncate: dict[str, int] = field(default_factory=dict)
    # Fields CoCalc types as uuid: a set must give a valid one (stored in lower case).
    uuid_fields: frozenset[str] = frozenset()
    computed: dict[str, Computed] = field(default_factory=dict)
    # Fields a get computes from the query after `check_get` (e.g. syncstrings.string_id);
    # they are then selected and filtered like the fields the caller sent.
    get_computed: dict[str, Computed] = field(default_factory=dict)
    query_where: QueryWhere | None = None
    # JSON fields holding timestamps as ISO strings, with the keys that do (None: every key,
    # at any depth); they come out in the wire's millisecond form (spec §4.2).
    json_dates: dict[str, frozenset[str] | None] = field(default_factory=dict)
    # Values a set fills in when it inserts a row without them (e.g. a log entry's time).
    insert_defaults: dict[str, Callable[[Caller], Any]] = field(default_factory=dict)
    check_get: GetCheck | None = None
    instead_of_get: InsteadOfGet | None = None
    # Runs in the transaction before the primary key is required and the row is read.
    check_set: SetCheck | None = None
    on_set: SetHook | None = None  # runs before the write, in the transaction
    # Replaces the write, after the field rules and the admin and delete checks.
    instead_of_set: Callable[[Caller, dict[str, Any], bool], Awaitable[None]] | None = None

    @property
    def gettable(self) -> bool:
        return bool(self.get_fields) or self.instead_of_get is not None

    @property
    def settable(self) -> bool:
        return bool(self.set_fields) or self.instead_of_set is not None
