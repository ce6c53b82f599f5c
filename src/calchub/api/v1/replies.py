"""The shape of every v1 reply, declared once beside the registry of messages.

Each event answers with its response event (`{"event": <response event>, "id": ..., <fields>}`),
some with another event as well (`account_creation_failed`), and every dispatched event may
answer `{"event": "error", "id": ..., "error": ...}`. These models declare the fields; the
OpenAPI document and the tests that hold replies to them are generated from here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from calchub.api.v1.messages import BILLING_EVENTS
from calchub.api.v1.registry import declare_replies


class Fields(BaseModel):
    """The fields of one reply, besides `event` and `id`."""

    model_config = ConfigDict(extra="forbid")


class Nothing(Fields):
    pass


class Pong(Fields):
    now: str = Field(description="the server's time, ISO 8601 UTC with milliseconds")


class Names(BaseModel):
    first_name: str | None = None
    last_name: str | None = None


class Usernames(Fields):
    usernames: dict[str, Names] = Field(
        description="names by account id; `{}` for an unknown account"
    )


class AccountCreated(Fields):
    account_id: str
    api_key: str | None = Field(None, description="only when `get_api_key` was true")


class AccountCreationFailed(Fields):
    reason: dict[str, Any] = Field(description="what was wrong, by field name")


class MaybeError(Fields):
    """Events that answer their own event, with `error` set when they failed."""

    error: Any = Field(None, description="false (or absent) on success, else the reason")


class AuthToken(Fields):
    auth_token: str


class SearchResult(BaseModel):
    account_id: str
    first_name: str | None = None
    last_name: str | None = None
    last_active: str | None = None
    created: str | None = None
    email_address: str | None = None
    email_address_verified: Any = None
    banned: bool | None = None


class SearchResults(Fields):
    results: list[SearchResult]


class ProjectId(Fields):
    project_id: str


class JoinedByToken(Fields):
    project_id: str | list[str] | None = Field(
        None, description="the project(s) joined, when a `token_id` was given"
    )


class Mesg(Fields):
    mesg: str


class CopyStarted(Fields):
    copy_path_id: str
    note: str


class CopyData(Fields):
    data: dict[str, Any] | list[dict[str, Any]] | str = Field(
        description="one copy operation, a list of them, or a confirmation"
    )


class TextData(Fields):
    data: str


class Listing(Fields):
    result: dict[str, Any] = Field(description="`files`, and `more: true` when cut at `limit`")


class ExecOutput(Fields):
    stdout: str
    stderr: str
    exit_code: int


class FileRead(BaseModel):
    path: str
    project_id: str
    content: str | None = None
    error: Any = None


class FileContent(Fields):
    content: str | list[FileRead] = Field(description="the text, or one item per file read")


class QueryResult(Fields):
    query: Any
    multi_response: bool
    options: Any = None
    changes: Any = None


class Interval(Fields):
    interval_s: float


class TicketUrl(Fields):
    url: str


class Tickets(Fields):
    tickets: list[dict[str, Any]]


class Upgrades(Fields):
    total: dict[str, float] = Field(description="the account's upgrades, by quota name")
    excess: dict[str, float] = Field(description="applied beyond the total, by quota name")
    available: dict[str, float] = Field(description="what is left to apply, by quota name")


class History(Fields):
    history: list[dict[str, Any]]


declare_replies("ping", Pong)
declare_replies("get_usernames", Usernames)
declare_replies("create_account", AccountCreated, account_creation_failed=AccountCreationFailed)
declare_replies("delete_account", Nothing)
for _event in ("change_password", "change_email_address", "forgot_password"):
    declare_replies(_event, MaybeError)
declare_replies("reset_forgot_password", MaybeError)
declare_replies("unlink_passport", Nothing)
declare_replies("user_auth", AuthToken)
declare_replies("user_search", SearchResults)
declare_replies("create_project", ProjectId)
for _event in (
    "touch_project",
    "disconnect_from_project",
    "write_text_file_to_project",
    "remove_collaborator",
    "invite_collaborator",
    "add_license_to_project",
    "remove_license_from_project",
    "log_client_error",
    "metrics",
    "copy_public_path_between_projects",
):
    declare_replies(_event, Nothing)
declare_replies("add_collaborator", JoinedByToken)
declare_replies("invite_noncloud_collaborators", Mesg)
declare_replies(
    "copy_path_between_projects", Nothing, copy_path_between_projects_response=CopyStarted
)
declare_replies("copy_path_status", CopyData)
declare_replies("copy_path_delete", CopyData)
declare_replies("public_get_text_file", TextData)
declare_replies("public_get_directory_listing", Listing)
declare_replies("project_exec", ExecOutput)
declare_replies("read_text_file_from_project", FileContent)
declare_replies("query", QueryResult)
declare_replies("start_metrics", Interval)
declare_replies("create_support_ticket", TicketUrl)
declare_replies("get_support_tickets", Tickets)
declare_replies("get_syncdoc_history", History)
declare_replies("get_available_upgrades", Upgrades)

# No payment backend: these always answer an error event.
for _event in BILLING_EVENTS:
    declare_replies(_event, None, unavailable="billing is not configured")
# Declared as API by CoCalc but never dispatched: HTTP 400 "unknown message event type".
for _event in ("stripe_customer", "stripe_plans"):
    declare_replies(_event, None, unavailable="a response type, not a request")
