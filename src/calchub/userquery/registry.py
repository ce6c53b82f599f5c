"""Every table `query` knows, by name (spec §3)."""

from __future__ import annotations

from calchub.userquery.schema import TableSpec
from calchub.userquery.tables import (
    accounts,
    file_use,
    license_usage,
    licenses,
    live,
    project_data,
    projects,
    public,
    registration_tokens,
    site_admin,
    site_settings,
    sync,
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for module in (
        accounts,
        projects,
        public,
        project_data,
        live,
        licenses,
        license_usage,
        site_settings,
        site_admin,
        registration_tokens,
        sync,
        file_use,
    )
    for spec in module.SPECS
}

# CoCalc tables without a user query: a set names them as existing but not settable.
# (organizations and blobs have one in CoCalc, but are left out here: spec §3.16.)
_INTERNAL_TABLES_WORDS = """
    organizations blobs
    stats webapp_errors copy_paths remember_me auth_tokens password_reset client_error_log
    file_access_log hub_servers instances storage_servers passport_settings
    site_license_usage_log analytics user_tracking email_counter account_creation_actions
    compute_servers
    """
INTERNAL_TABLES = frozenset(_INTERNAL_TABLES_WORDS.split())
