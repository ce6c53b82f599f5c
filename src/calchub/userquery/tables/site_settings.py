"""`server_settings` and `site_settings` (spec §3.16): admins read and write site settings.

Both accept CoCalc's setting names and calchub's own (`calchub.site.SETTINGS`); a value of
one of calchub's settings must pass the same validation as `calchub admin setting`, so that
nobody stores a value the server cannot use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from calchub.db.tables import server_settings
from calchub.site import SETTINGS, check_value
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, setting
from calchub.userquery.schema import Rule, SetContext, TableSpec

# CoCalc's site-defaults.ts and site-settings-extras.ts at the spec's commit.
_COCALC_NAMES_WORDS = """
    dns theming site_name site_description help_email terms_of_service_url terms_of_service
    account_creation_email_instructions organization_name organization_email organization_url
    logo_square logo_rectangular splash_image index_info_html versions version_min_project
    version_min_browser version_recommended_browser kucalc google_analytics commercial
    max_trial_projects nonfree_countries onprem_quota_heading default_quotas max_upgrades
    ssh_gateway iframe_comm_hosts email_enabled verify_emails email_signup anonymous_signup
    share_server landing_pages
    pii_retention stripe_heading stripe_publishable_key stripe_secret_key
    zendesk_heading zendesk_token zendesk_username zendesk_uri
    email_backend sendgrid_key email_smtp_server email_smtp_from email_smtp_login
    email_smtp_password email_smtp_port email_smtp_secure
    password_reset_override password_reset_smtp_server password_reset_smtp_from
    password_reset_smtp_login password_reset_smtp_password password_reset_smtp_port
    password_reset_smtp_secure
    """
COCALC_NAMES = frozenset(_COCALC_NAMES_WORDS.split())
ALLOWED_NAMES = COCALC_NAMES | frozenset(SETTINGS)


def _name(query: dict[str, Any], caller: Caller) -> str:
    name = query.get("name")
    if not isinstance(name, str) or name not in ALLOWED_NAMES:
        shown = "undefined" if name is None else name
        raise ValueError(f"setting name='{shown}' not allowed")
    return name


async def _check_value(ctx: SetContext) -> None:
    name = ctx.query["name"]
    if "value" not in ctx.values:
        if ctx.old is None:
            raise QueryError(f"FATAL: must specify {ctx.spec.name}.value")
        return
    if name in SETTINGS:
        try:
            check_value(name, ctx.values["value"])
        except ValueError as exc:
            raise setting("value", str(exc)) from None


def _known(table: Table, caller: Caller) -> list[Any]:
    return [table.c.name.in_(sorted(ALLOWED_NAMES))]


_SET_FIELDS = {"name": Rule.COMPUTED, "value": Rule.ALLOW}

SERVER_SETTINGS = TableSpec(
    name="server_settings",
    storage=server_settings,
    primary_key=("name",),
    set_fields=_SET_FIELDS,
    set_admin=True,
    computed={"name": _name},
    on_set=_check_value,
)

SITE_SETTINGS = TableSpec(
    name="site_settings",
    storage=server_settings,
    primary_key=("name",),
    get_fields={"name": None, "value": None},
    set_fields=_SET_FIELDS,
    get_admin=True,
    set_admin=True,
    where=_known,
    computed={"name": _name},
    on_set=_check_value,
)

SPECS = (SERVER_SETTINGS, SITE_SETTINGS)
