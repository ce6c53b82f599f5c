"""v2 routes for accounts (spec §3.3, §3.4, §3.6, §3.7): user-query, accounts/*, messages/*,
api-keys and support/*. Each reads its body and makes one domain call."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from calchub.accounts import api_keys, credentials, profile
from calchub.accounts.names import names_of
from calchub.accounts.search import user_search
from calchub.api.v2.registry import Body, V2Call, route
from calchub.api.v2.route_rules import SUCCESS
from calchub.api.v2.route_rules import account as _account
from calchub.api.v2.route_rules import worded as _worded
from calchub.errors import Conflict, Invalid, Refused
from calchub.messages.get import get_messages
from calchub.messages.send import send_message
from calchub.projects import file_activity
from calchub.support.tickets import NewTicket, create_ticket, ticket_url, tickets_of
from calchub.userquery.engine import run_query

# --- queries and accounts ------------------------------------------------------------------


class QueryBody(Body):
    query: Any = None


@route(
    "user-query",
    QueryBody,
    "Run a user query (get or set), as the `query` of API v1.",
    '{"query": <result>}',
)
async def user_query(call: V2Call, body: QueryBody) -> Any:
    _account(call, "must be signed in")
    return {"query": await run_query(call.hub, call.actor, body.query, None, None, None)}


class NamesBody(Body):
    account_ids: list[str] = Field(default_factory=list, max_length=1000)


@route(
    "accounts/get-names",
    NamesBody,
    "First and last names of accounts.",
    '{"names": {"<account_id>": {"first_name", "last_name"}}}',
    public=True,
)
async def get_names(call: V2Call, body: NamesBody) -> Any:
    return {"names": await names_of(call.hub, body.account_ids)}


class SearchBody(Body):
    query: str = Field(default="", max_length=10_000)
    limit: int = Field(default=20, ge=1, le=100)


@route(
    "accounts/search",
    SearchBody,
    "Find accounts by name or exact email address.",
    '[{"account_id","first_name","last_name",...}]',
    public=True,
)
async def accounts_search(call: V2Call, body: SearchBody) -> Any:
    return await user_search(
        call.hub, call.actor, body.query, admin=False, active="", limit=body.limit
    )


# --- messages ------------------------------------------------------------------------------


class SendBody(Body):
    to_ids: list[str] | None = Field(default=None, max_length=1000)
    subject: str = ""
    body: str = ""
    reply_id: int | None = None


@route(
    "messages/send",
    SendBody,
    "Send a message to accounts (by id or email address; default: yourself).",
    '{"status":"success","id"}',
)
async def messages_send(call: V2Call, body: SendBody) -> Any:
    caller = _account(call, "must be signed in")
    to_ids = body.to_ids if body.to_ids is not None else [caller]
    message_id = await send_message(
        call.hub, call.actor, to_ids, body.subject, body.body, body.reply_id
    )
    return {**SUCCESS, "id": message_id}


class GetMessagesBody(Body):
    limit: int = 100
    offset: int = 0
    type: str = "received"
    cutoff: datetime | None = None


@route(
    "messages/get",
    GetMessagesBody,
    "Your messages, newest first: `type` received, sent, new or starred.",
    '{"status":"success","messages":[...]}',
)
async def messages_get(call: V2Call, body: GetMessagesBody) -> Any:
    _account(call, "must be signed in")
    if body.cutoff is not None and body.cutoff.tzinfo is None:
        raise Invalid("cutoff must name its time zone")
    found = await get_messages(
        call.hub,
        call.actor,
        limit=body.limit,
        offset=body.offset,
        kind=body.type,
        cutoff=body.cutoff,
    )
    return {**SUCCESS, "messages": found}


# --- api keys ------------------------------------------------------------------------------


class ApiKeysBody(Body):
    action: Literal["get", "create", "delete", "edit"]
    project_id: str | None = None
    name: str | None = Field(default=None, max_length=1000)
    expire: datetime | None = None
    id: int | None = None


@route(
    "api-keys",
    ApiKeysBody,
    "Manage API keys (yours, or a project's with `project_id`): `action` get, create, "
    "delete or edit.",
    '{"response": ...}',
)
async def manage_api_keys(call: V2Call, body: ApiKeysBody) -> Any:
    if call.actor.account_id is None:
        raise Invalid("account_id is not a valid account")
    if body.expire is not None and body.expire.tzinfo is None:
        raise Invalid("expire must carry a time zone")
    hub, actor = call.hub, call.actor
    if body.action == "get":
        return {
            "response": await api_keys.get(hub, actor, project_id=body.project_id, key_id=body.id)
        }
    if body.action == "create":
        created = await api_keys.create(
            hub, actor, name=body.name, expire=body.expire, project_id=body.project_id
        )
        return {"response": [created]}
    if body.id is None:
        raise Invalid("id must be given")
    if body.action == "delete":
        await api_keys.delete(hub, actor, body.id, project_id=body.project_id)
        return {"response": {}}
    changes: dict[str, Any] = {}
    fields = body.model_fields_set
    if "name" in fields:
        changes["name"] = body.name
    if "expire" in fields:
        changes["expire"] = body.expire
    await api_keys.edit(hub, actor, body.id, project_id=body.project_id, changes=changes)
    return {"response": {}}


# --- support -------------------------------------------------------------------------------


class TicketOptions(Body):
    email: str = Field(max_length=254)
    subject: str = Field(default="", max_length=1024)
    body: str = Field(default="", max_length=100_000)
    type: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, max_length=4096)
    info: dict[str, Any] | None = None


class TicketBody(Body):
    options: TicketOptions


@route(
    "support/create-ticket",
    TicketBody,
    "Open a support ticket; answers the page where it can be followed.",
    '{"url"}',
    public=True,
)
async def support_create_ticket(call: V2Call, body: TicketBody) -> Any:
    options = body.options
    ticket = NewTicket(
        email_address=options.email,
        subject=options.subject,
        body=options.body,
        account_id=call.actor.account_id,
        tags=[options.type] if options.type else None,
        location=options.url,
        info=options.info,
    )
    ticket_id = await create_ticket(call.hub, call.actor, ticket)
    return {"url": ticket_url(call.hub, ticket_id)}


@route("support/tickets", Body, "Your support tickets, newest first.", '{"tickets":[...]}')
async def support_tickets(call: V2Call, body: Body) -> Any:
    return {"tickets": await tickets_of(call.hub, _account(call, "must be signed in"))}


# --- the account itself --------------------------------------------------------------------


class ProfileBody(Body):
    account_id: str | None = Field(default=None, max_length=100)


@route(
    "accounts/profile",
    ProfileBody,
    "The public profile of `account_id`, or without it your own (with `is_admin`, "
    "`is_partner`, `is_anonymous`, `email_address`); `{}` when not signed in.",
    '{"profile":{"account_id","first_name","last_name","image","color","name"}}',
    public=True,
)
async def accounts_profile(call: V2Call, body: ProfileBody) -> Any:
    return {"profile": await profile.profile(call.hub, call.actor, body.account_id)}


class SetNameBody(Body):
    username: str | None = Field(default=None, max_length=1000)
    first_name: str | None = Field(default=None, max_length=1000)
    last_name: str | None = Field(default=None, max_length=1000)
    account_id: str | None = None


@route(
    "accounts/set-name",
    SetNameBody,
    "Set your `username`, `first_name` or `last_name` (empty ones are left as they are); "
    "an admin may name another `account_id`.",
    '{"status":"success"}',
    public=True,
)
async def accounts_set_name(call: V2Call, body: SetNameBody) -> Any:
    caller = _account(call, "Must be signed in to edit account name.")
    if body.account_id and not call.actor.is_admin:
        raise Refused("The `account_id` field may only be specified by account administrators.")
    fields = {"name": body.username, "first_name": body.first_name, "last_name": body.last_name}
    change: dict[str, Any] = {"account_id": caller}
    change.update({key: value for key, value in fields.items() if value})
    options = [{"account_id": body.account_id}] if body.account_id else None
    if len(change) > 1:
        await run_query(call.hub, call.actor, {"accounts": change}, options, None, None)
    return SUCCESS


class EmailOfBody(Body):
    account_id: str | None = Field(default=None, max_length=100)


@route(
    "accounts/get-email-address",
    EmailOfBody,
    "The email address of `account_id` (admins and partners only).",
    '{"email_address"}',
    public=True,
)
async def accounts_get_email_address(call: V2Call, body: EmailOfBody) -> Any:
    if body.account_id is None:
        return {}
    found = await profile.email_address_of(call.hub, call.actor, body.account_id)
    return {} if found is None else {"email_address": found}


class SignOutBody(Body):
    all: bool = False


@route(
    "accounts/sign-out",
    SignOutBody,
    "With `all`, end every web session of your account. API keys stay valid, and signing a "
    "single browser out is the web pages' job.",
    '{"status":"success"}',
    public=True,
)
async def accounts_sign_out(call: V2Call, body: SignOutBody) -> Any:
    if body.all and call.actor.account_id is not None and call.actor.project_id is None:
        await profile.sign_out_everywhere(call.hub, call.actor)
    return SUCCESS


@route(
    "accounts/send-verification-email",
    Body,
    "Send a new link to verify your email address.",
    '{"status":"success"}',
)
async def accounts_send_verification_email(call: V2Call, body: Body) -> Any:
    _account(call, "must be signed in")
    await profile.resend_verification(call.hub, call.actor)
    return SUCCESS


class SetEmailBody(Body):
    email_address: str = Field(default="", max_length=254)
    password: str = Field(default="", max_length=1000)


@route(
    "accounts/set-email-address",
    SetEmailBody,
    "Change your email address (your `password` confirms it); a link to verify the new "
    "address is sent to it.",
    '{"status":"success"}',
)
async def accounts_set_email_address(call: V2Call, body: SetEmailBody) -> Any:
    caller = _account(call, "must be signed in")
    try:
        await credentials.change_email_address(
            call.hub,
            call.actor,
            account_id=caller,
            new_email=body.email_address,
            password=body.password,
        )
    except Conflict:
        raise Conflict(
            f'The email address "{body.email_address}" is already in use by another account.'
        ) from None
    except Invalid:
        raise Invalid("email address is not valid") from None
    except Refused:
        raise Refused("password is incorrect") from None
    return SUCCESS


class SetPasswordBody(Body):
    # CoCalc spells these in camel case.
    currentPassword: str = Field(default="", max_length=1000)
    newPassword: str = Field(default="", max_length=1000)


@route(
    "accounts/set-password",
    SetPasswordBody,
    "Change your password (`currentPassword`, `newPassword`); every web session ends.",
    '{"status":"success"}',
)
async def accounts_set_password(call: V2Call, body: SetPasswordBody) -> Any:
    caller = _account(call, "must be signed in")
    await _worded(
        credentials.change_password(
            call.hub,
            call.actor,
            account_id=caller,
            old_password=body.currentPassword,
            new_password=body.newPassword,
        ),
        "Current password is incorrect.",
    )
    return SUCCESS


@route(
    "accounts/delete",
    Body,
    "Delete your account: its address is freed and every key and session ends.",
    '{"status":"success"}',
)
async def accounts_delete(call: V2Call, body: Body) -> Any:
    caller = _account(call, "must be signed in")
    await credentials.delete_account(call.hub, call.actor, caller)
    return SUCCESS


class FileAccessBody(Body):
    interval: str | None = Field(default=None, max_length=100)


@route(
    "file-access",
    FileAccessBody,
    "The files you opened within `interval` (e.g. `3 hours`; default `1 day`), with their "
    "projects' titles; none when not signed in.",
    '{"files":[{"path","project_id","title"}]}',
    public=True,
)
async def file_access(call: V2Call, body: FileAccessBody) -> Any:
    return {"files": await file_activity.files_accessed(call.hub, call.actor, body.interval)}
