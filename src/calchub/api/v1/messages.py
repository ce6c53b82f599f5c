"""Every CoCalc HTTP API v1 event, declared once.

Field order, defaults and required fields follow CoCalc's message definitions (and the
decisions recorded in the spec). A field typed `X | None = None` is optional with no default:
absent means "not given". Strings carry length limits so that a huge value is rejected as
invalid input before any handler sees it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from calchub.api.v1.registry import NON_API_EVENTS, MessageDef, NoIdRequest, Request, define

Short = Annotated[str, Field(max_length=1024)]
Text = Annotated[str, Field(max_length=100_000)]
Uuid = Annotated[str, Field(max_length=64)]
UuidOrList = Uuid | Annotated[list[Uuid], Field(max_length=10_000)]
Id = Any  # the message id: any JSON value, echoed back unvalidated


def _doc(text: str) -> str:
    return " ".join(text.split())


# --- accounts ------------------------------------------------------------------------------


class Ping(Request):
    id: Id = None


define(
    MessageDef(
        "ping",
        Ping,
        "pong",
        "Test the API connection; answers the server time.",
        examples=("curl -X POST -u sk_...: http://localhost:8080/api/v1/ping",),
    )
)


class GetUsernames(Request):
    id: Id = None
    account_ids: Annotated[list[Uuid], Field(max_length=10_000)] = Field(
        description="account ids to look up"
    )


define(
    MessageDef(
        "get_usernames", GetUsernames, "usernames", "First and last names of the given accounts."
    )
)


class CreateAccount(Request):
    id: Id = None
    first_name: Short | None = None
    last_name: Short | None = None
    email_address: Short | None = None
    password: Short | None = Field(None, description="between 6 and 64 characters")
    agreed_to_terms: bool | None = Field(None, description="must be true")
    token: Short | None = Field(None, description="registration token, if the site requires one")
    get_api_key: bool | None = Field(None, description="if true, also create and return an API key")
    usage_intent: Short | None = None


define(
    MessageDef(
        "create_account",
        CreateAccount,
        "account_created",
        _doc("""Create a new account. Fails with `account_creation_failed` and a
                  `reason` object when a field is not acceptable."""),
    )
)


class DeleteAccount(Request):
    id: Id = None
    account_id: Uuid = Field(description="the account to delete: your own, unless you are an admin")


define(
    MessageDef(
        "delete_account",
        DeleteAccount,
        "account_deleted",
        _doc("""Delete an account: it can no longer sign in and its API keys stop
                  working at once; it stays listed on its projects."""),
    )
)


class ChangePassword(Request):
    id: Id = None
    account_id: Uuid
    old_password: Short = ""
    new_password: Short


define(
    MessageDef("change_password", ChangePassword, "changed_password", "Change your own password.")
)


class ChangeEmailAddress(Request):
    id: Id = None
    account_id: Uuid
    old_email_address: Short = ""
    new_email_address: Short
    password: Short = ""


define(
    MessageDef(
        "change_email_address",
        ChangeEmailAddress,
        "changed_email_address",
        "Change your own email address (needs your password).",
    )
)


class ForgotPassword(Request):
    id: Id = None
    email_address: Short


define(
    MessageDef(
        "forgot_password",
        ForgotPassword,
        "forgot_password_response",
        "Email a single-use password reset link to the account with this address.",
    )
)


class ResetForgotPassword(Request):
    id: Id = None
    reset_code: Short
    new_password: Short


define(
    MessageDef(
        "reset_forgot_password",
        ResetForgotPassword,
        "reset_forgot_password_response",
        "Set a new password with the code from a password reset email.",
    )
)


class UnlinkPassport(Request):
    strategy: Short
    id: str | int = Field(description="the passport's id (also echoed as the message id)")


define(
    MessageDef(
        "unlink_passport",
        UnlinkPassport,
        "success",
        "Remove a linked single-sign-on identity from your account.",
    )
)


class UserAuth(Request):
    id: Id = None
    account_id: Uuid
    password: Short


define(
    MessageDef(
        "user_auth",
        UserAuth,
        "user_auth_token",
        _doc("""Get a 24-character token that signs the browser in as the given account
                  for 12 hours; needs that account's password (admins may leave it blank)."""),
    )
)


class UserSearch(Request):
    id: Id = None
    query: Text = Field(description="comma separated names or email addresses")
    admin: bool = False
    active: Short = ""
    limit: Annotated[int, Field(ge=0)] = 20


define(
    MessageDef(
        "user_search",
        UserSearch,
        "user_search_results",
        _doc("""Search accounts by name prefix or exact email address. Email addresses
                  are shown only for email queries, or to admins."""),
    )
)


class LogClientError(Request):
    id: Id = None
    error: Text


define(
    MessageDef(
        "log_client_error",
        LogClientError,
        "success",
        "Record an error for the site's support staff.",
    )
)


class Metrics(Request):
    id: Id = None
    metrics: Any


define(MessageDef("metrics", Metrics, "success", "Report client telemetry (latest kept)."))


class StartMetrics(Request):
    id: Id = None
    interval_s: float | None = None


define(
    MessageDef(
        "start_metrics",
        StartMetrics,
        "start_metrics",
        "Ask how often the client should report metrics.",
    )
)

# --- projects ------------------------------------------------------------------------------


class CreateProject(Request):
    id: Id = None
    title: Short = ""
    description: Text = ""
    image: Short | None = None
    license: Short | None = None
    start: bool = False


define(MessageDef("create_project", CreateProject, "project_created", "Create a new project."))


class ProjectOnly(Request):
    id: Id = None
    project_id: Uuid


class TouchProject(ProjectOnly):
    pass


class DisconnectFromProject(ProjectOnly):
    pass


define(
    MessageDef("touch_project", TouchProject, "success", "Mark a project as in use (and start it).")
)
define(
    MessageDef(
        "disconnect_from_project",
        DisconnectFromProject,
        "success",
        "Drop the server's connection to a project.",
    )
)


class ProjectLicense(Request):
    id: Id = None
    project_id: Uuid
    license_id: Short


class AddLicenseToProject(ProjectLicense):
    pass


class RemoveLicenseFromProject(ProjectLicense):
    pass


define(
    MessageDef(
        "add_license_to_project",
        AddLicenseToProject,
        "success",
        "Apply a site license to a project.",
    )
)
define(
    MessageDef(
        "remove_license_from_project",
        RemoveLicenseFromProject,
        "success",
        "Remove a site license from a project.",
    )
)


class InviteCollaborator(Request):
    id: Id = None
    project_id: Uuid
    account_id: Uuid
    title: Short | None = None
    link2proj: Short | None = None
    replyto: Short | None = None
    replyto_name: Short | None = None
    email: Text | None = None
    subject: Short | None = None


define(
    MessageDef(
        "invite_collaborator",
        InviteCollaborator,
        "success",
        "Add an existing account to a project, optionally emailing them.",
    )
)


class AddCollaborator(Request):
    id: Id = None
    account_id: UuidOrList
    project_id: UuidOrList | None = None
    token_id: Short | Annotated[list[Short | None], Field(max_length=10_000)] | None = None


define(
    MessageDef(
        "add_collaborator",
        AddCollaborator,
        "success",
        "Add accounts to projects directly, or through project invite tokens.",
    )
)


class RemoveCollaborator(Request):
    id: Id = None
    project_id: Uuid
    account_id: Uuid


define(
    MessageDef(
        "remove_collaborator",
        RemoveCollaborator,
        "success",
        "Remove a collaborator (never the owner) from a project.",
    )
)


class InviteNoncloudCollaborators(Request):
    id: Id = None
    project_id: Uuid
    to: Text
    email: Text
    title: Short
    link2proj: Short
    replyto: Short | None = None
    replyto_name: Short | None = None
    subject: Short | None = None


define(
    MessageDef(
        "invite_noncloud_collaborators",
        InviteNoncloudCollaborators,
        "invite_noncloud_collaborators_resp",
        "Invite people by email address to collaborate on a project.",
    )
)


class ProjectExec(Request):
    id: Id = None
    project_id: Uuid
    path: Text = ""
    command: Text
    args: Annotated[list[Text], Field(max_length=10_000)] = Field(default_factory=list)
    timeout: Annotated[float, Field(ge=0)] = 10
    aggregate: Any = None
    max_output: Annotated[int, Field(ge=0)] | None = None
    bash: bool = False
    err_on_exit: bool = True


define(
    MessageDef("project_exec", ProjectExec, "project_exec_output", "Run a command in a project.")
)

PathOrList = Text | Annotated[list[Text], Field(max_length=10_000)]


class ReadTextFileFromProject(Request):
    id: Id = None
    project_id: UuidOrList
    path: PathOrList


define(
    MessageDef(
        "read_text_file_from_project",
        ReadTextFileFromProject,
        "text_file_read_from_project",
        "Read text files from projects.",
    )
)


class WriteTextFileToProject(Request):
    id: Id = None
    project_id: Uuid
    path: Text
    content: str


define(
    MessageDef(
        "write_text_file_to_project",
        WriteTextFileToProject,
        "file_written_to_project",
        "Write a text file in a project.",
    )
)


class CopyRequest(Request):
    """The fields both copy events share, in CoCalc's order."""

    id: Id = None
    src_project_id: Uuid
    src_path: Text
    target_project_id: Uuid
    target_path: Text | None = None
    overwrite_newer: bool = False
    delete_missing: bool = False
    backup: bool = False
    timeout: Annotated[float, Field(ge=0)] | None = None


class CopyPathBetweenProjects(CopyRequest):
    wait_until_done: bool = True
    scheduled: Short | None = None
    exclude: Annotated[list[Text], Field(max_length=1000)] | None = None
    exclude_history: bool | None = None


define(
    MessageDef(
        "copy_path_between_projects",
        CopyPathBetweenProjects,
        "success",
        "Copy a file or directory from one project to another.",
    )
)


class CopyPathStatus(NoIdRequest):
    copy_path_id: Uuid | None = None
    src_project_id: Uuid | None = None
    target_project_id: Uuid | None = None
    src_path: Text | None = None
    limit: int = 1000
    offset: int | None = None
    pending: bool = True
    failed: bool = False


define(
    MessageDef(
        "copy_path_status",
        CopyPathStatus,
        "copy_path_status_response",
        "Status of one copy operation, or a filtered list of them.",
    )
)


class CopyPathDelete(NoIdRequest):
    copy_path_id: Uuid | None = None


define(
    MessageDef(
        "copy_path_delete",
        CopyPathDelete,
        "copy_path_status_response",
        "Cancel a scheduled copy that has not started.",
    )
)


class CopyPublicPathBetweenProjects(CopyRequest):
    exclude: Annotated[list[Text], Field(max_length=1000)] | None = None


define(
    MessageDef(
        "copy_public_path_between_projects",
        CopyPublicPathBetweenProjects,
        "success",
        "Copy a public path of any project into one of yours.",
    )
)


class PublicGetTextFile(Request):
    id: Id = None
    project_id: Uuid
    path: Text


define(
    MessageDef(
        "public_get_text_file",
        PublicGetTextFile,
        "public_text_file_contents",
        "Read a text file inside a public path; the API key may be blank.",
        public=True,
    )
)


class PublicGetDirectoryListing(Request):
    id: Id = None
    project_id: Uuid
    path: Text
    hidden: bool = False
    time: bool = False
    start: int = 0
    limit: int = -1


define(
    MessageDef(
        "public_get_directory_listing",
        PublicGetDirectoryListing,
        "public_directory_listing",
        "List a directory inside a public path; the API key may be blank.",
        public=True,
    )
)

# --- query, sync, support ------------------------------------------------------------------


class Query(Request):
    id: Id = None
    query: dict[str, Any] | list[Any]
    changes: Any = None
    multi_response: bool = False
    options: Any = None


define(MessageDef("query", Query, "query", "Get or set rows of the database (user queries)."))


class GetSyncdocHistory(Request):
    id: Id = None
    string_id: Short
    patches: bool | None = None


define(
    MessageDef(
        "get_syncdoc_history",
        GetSyncdocHistory,
        "syncdoc_history",
        "Edit history of a synchronized document (a `syncstrings` row), for owners, "
        "collaborators and admins: `history` lists its patches oldest first as `{time_utc, "
        "format, account_id, user, patch_length}`; with `patches` true, `patch` (and "
        "`snapshot`) instead of `patch_length`.",
    )
)


class CreateSupportTicket(Request):
    id: Id = None
    username: Short | None = None
    email_address: Short
    subject: Short
    body: Text
    tags: Annotated[list[Short], Field(max_length=100)] | None = None
    account_id: Uuid | None = None
    location: Short | None = None
    info: dict[str, Any] | None = None


define(
    MessageDef(
        "create_support_ticket", CreateSupportTicket, "support_ticket_url", "Open a support ticket."
    )
)


class GetSupportTickets(Request):
    id: Id = None


define(
    MessageDef(
        "get_support_tickets", GetSupportTickets, "support_tickets", "Your open support tickets."
    )
)

# --- licenses and billing ------------------------------------------------------------------


class GetAvailableUpgrades(Request):
    id: Id = None


define(
    MessageDef(
        "get_available_upgrades",
        GetAvailableUpgrades,
        "available_upgrades",
        "Upgrades you may apply to projects: `total` (all zero: upgrades come with billing,"
        " which this server does not have), `excess` applied beyond it (by an admin),"
        " `available` still to apply.",
    )
)


class NoFields(Request):
    id: Id = None


class StripeGetCustomer(NoFields):
    pass


class StripeCustomer(Request):
    id: Id = None
    customer: Any = None
    stripe_publishable_key: Any = None


class StripePlans(Request):
    id: Id = None
    plans: Any


class StripeCreateSource(Request):
    id: Id = None
    token: Short


class StripeCard(Request):
    card_id: Short
    id: Id = None


class StripeDeleteSource(StripeCard):
    pass


class StripeSetDefaultSource(StripeCard):
    pass


class StripeUpdateSource(Request):
    card_id: Short
    info: Any
    id: Id = None


class StripeCreateSubscription(Request):
    id: Id = None
    plan: Short
    quantity: int = 1
    coupon_id: Short | None = None


class StripeCancelSubscription(Request):
    id: Id = None
    subscription_id: Short
    at_period_end: bool = True


class StripeUpdateSubscription(Request):
    id: Id = None
    subscription_id: Short
    quantity: int | None = None
    projects: Any = None
    plan: Short | None = None
    coupon_id: Short | None = None


class StripeList(Request):
    id: Id = None
    limit: int | None = None
    ending_before: Short | None = None
    starting_after: Short | None = None


class StripeGetSubscriptions(StripeList):
    pass


class StripeGetCharges(StripeList):
    pass


class StripeGetInvoices(StripeList):
    pass


class StripeGetCoupon(Request):
    id: Id = None
    coupon_id: Short


class PurchaseLicense(Request):
    id: Id = None
    info: dict[str, Any]


_BILLING: list[tuple[str, type[Request], str | None, str]] = [
    ("stripe_get_customer", StripeGetCustomer, "stripe_customer", "Your billing customer record."),
    ("stripe_create_source", StripeCreateSource, None, "Add a payment card."),
    ("stripe_delete_source", StripeDeleteSource, None, "Remove a payment card."),
    ("stripe_set_default_source", StripeSetDefaultSource, None, "Choose the default card."),
    ("stripe_update_source", StripeUpdateSource, None, "Update a payment card."),
    ("stripe_create_subscription", StripeCreateSubscription, None, "Subscribe to a plan."),
    ("stripe_cancel_subscription", StripeCancelSubscription, None, "Cancel a subscription."),
    ("stripe_update_subscription", StripeUpdateSubscription, None, "Change a subscription."),
    (
        "stripe_get_subscriptions",
        StripeGetSubscriptions,
        "stripe_subscriptions",
        "Your subscriptions.",
    ),
    ("stripe_get_charges", StripeGetCharges, "stripe_charges", "Your charges."),
    ("stripe_get_invoices", StripeGetInvoices, "stripe_invoices", "Your invoices."),
    ("stripe_get_coupon", StripeGetCoupon, "stripe_coupon", "Look up a coupon."),
    ("purchase_license", PurchaseLicense, "purchase_license_resp", "Buy a site license."),
]
BILLING_EVENTS = tuple(event for event, *_ in _BILLING)
for _event, _model, _response, _description in _BILLING:
    define(MessageDef(_event, _model, _response, _description))

# Declared as API by CoCalc but never dispatched: always "unknown message event type".
define(
    MessageDef(
        "stripe_customer",
        StripeCustomer,
        None,
        "A response type; calling it is an error.",
        dispatchable=False,
    )
)
define(
    MessageDef(
        "stripe_plans",
        StripePlans,
        None,
        "A response type; calling it is an error.",
        dispatchable=False,
    )
)

# CoCalc's websocket-only messages: calling them over HTTP is "not part of the HTTP API".
NON_API_EVENTS.update(
    [
        "start_session",
        "session_started",
        "output",
        "execute_javascript",
        "account_created",
        "account_creation_failed",
        "account_deleted",
        "sign_in",
        "remember_me_failed",
        "sign_in_failed",
        "signed_in",
        "sign_out",
        "signed_out",
        "error",
        "success",
        "reconnect",
        "cookies",
        "open_project",
        "project_opened",
        "project_exec_output",
        "user_search_results",
        "project_users",
        "version",
        "save_blob",
        "projects_running_on_server",
        "local_hub",
        "heartbeat",
        "pong",
        "webapp_error",
        "usernames",
        "changed_password",
        "changed_email_address",
        "forgot_password_response",
        "reset_forgot_password_response",
        "user_auth_token",
        "project_created",
        "text_file_read_from_project",
        "file_written_to_project",
        "copy_path_between_projects_response",
        "copy_path_status_response",
        "public_text_file_contents",
        "public_directory_listing",
        "syncdoc_history",
        "support_ticket_url",
        "support_tickets",
        "available_upgrades",
        "purchase_license_resp",
        "invite_noncloud_collaborators_resp",
        "stripe_subscriptions",
        "stripe_coupon",
        "stripe_charges",
        "stripe_invoices",
        "stripe_admin_create_invoice_item",
        "query_cancel",
        "query_get_changefeed_ids",
        "project_session_info",
    ]
)
