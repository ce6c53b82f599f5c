"""Every table `query` knows, by name (spec §3)."""

from __future__ import annotations

from calchub.userquery.schema import TableSpec
from calchub.userquery.tables import (
    accounts,
    file_use,
    live,
    project_data,
    projects,
    public,
    sync,
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for module in (accounts, projects, public, project_data, live, sync, file_use)
    for spec in module.SPECS
}

# CoCalc tables without a user query: a set names them as existing but not settable.
_INTERNAL_TABLES_WORDS = """
    stats webapp_errors copy_paths remember_me auth_tokens password_reset client_error_log
    file_access_log hub_servers instances storage_servers passport_settings
    site_license_usage_log analytics user_tracking email_counter account_creation_actions
    compute_servers
    """
INTERNAL_TABLES = frozenset(_INTERNAL_TABLES_WORDS.split())
