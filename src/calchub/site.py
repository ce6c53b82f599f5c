"""Site settings stored in the database (`server_settings`), so that every hub process
sharing one database agrees on them. Admins change them with `calchub admin setting`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub import arrivals
from calchub.config import Settings
from calchub.db.counters import CounterReader, reader_if_triggers_exist
from calchub.db.tables import server_settings
from calchub.runtime.base import DEFAULT_NETWORK_DENY
from calchub.runtime.network import parse_ranges


@dataclass(frozen=True)
class SettingDef:
    name: str
    description: str
    default: str | None  # None: derived from the server's address (see SiteSettings.get)
    choices: tuple[str, ...] = ()
    integer: bool = False
    ranges: bool = False  # a list of IPv4 ranges (CIDR)


SETTINGS: dict[str, SettingDef] = {
    s.name: s
    for s in [
        SettingDef("site_name", "Name of the site, used in emails.", "calchub"),
        SettingDef("dns", "Host name of the site, used in emails (default: from site_url).", None),
        SettingDef("organization_name", "Sender name of emails.", "calchub"),
        SettingDef(
            "organization_email", "Sender address of emails (default: noreply@<dns>).", None
        ),
        SettingDef("help_email", "Address users are told to contact (default: help@<dns>).", None),
        SettingDef(
            "email_signup",
            "Whether accounts may be created with email and password.",
            "yes",
            choices=("yes", "no"),
        ),
        SettingDef(
            "account_creation",
            "Who may call create_account: any key holder, or admins.",
            "any",
            choices=("any", "admin"),
        ),
        SettingDef(
            "account_creation_ip_limit",
            "Accounts non-admins may create per IP address per 30 minutes.",
            "150",
            integer=True,
        ),
        SettingDef(
            "default_quota_memory_mb",
            "Memory of a project without upgrades (MB).",
            "1000",
            integer=True,
        ),
        SettingDef(
            "default_quota_cores", "CPU cores of a project without upgrades.", "1", integer=True
        ),
        SettingDef(
            "default_quota_disk_mb",
            "Disk space of a project without upgrades (MB).",
            "3000",
            integer=True,
        ),
        SettingDef(
            "default_quota_processes", "Processes a project may run at once.", "256", integer=True
        ),
        SettingDef(
            "default_quota_network",
            "Whether projects reach the network by default.",
            "no",
            choices=("yes", "no"),
        ),
        SettingDef(
            "default_quota_idle_timeout_s",
            "Seconds without activity after which a project is stopped.",
            "1800",
            integer=True,
        ),
        SettingDef(
            "project_network",
            "Network access for projects whose quota includes it: 'none', or 'nat' (their own "
            "network namespace with outbound IPv4 NAT through pasta; never the host's loopback "
            "or addresses, nor the ranges in project_network_deny).",
            "none",
            choices=("none", "nat"),
        ),
        SettingDef(
            "project_network_deny",
            "IPv4 ranges (CIDR, comma separated) networked projects may not reach.",
            DEFAULT_NETWORK_DENY,
            ranges=True,
        ),
        SettingDef(
            "project_network_allow",
            "IPv4 ranges (CIDR, comma separated) reachable even inside a denied range (the "
            "most specific range wins; the host's own addresses stay unreachable).",
            "",
            ranges=True,
        ),
        SettingDef(
            "exec_max_timeout_s", "Longest project_exec allowed (seconds).", "3600", integer=True
        ),
        SettingDef(
            "max_projects_per_account",
            "Projects one account may own (0: no limit; admins are not limited).",
            "1000",
            integer=True,
        ),
        SettingDef(
            "max_running_projects_per_account",
            "Projects of one owner that may run at once (0: no limit; admins' projects are "
            "not limited).",
            "50",
            integer=True,
        ),
        SettingDef(
            "project_creations_per_minute",
            "Projects one account may create per minute (0: no limit; admins are not limited).",
            "30",
            integer=True,
        ),
        SettingDef(
            "invitation_emails_per_hour",
            "Invitation emails one account may have sent per hour (0: no limit; admins are not "
            "limited).",
            "50",
            integer=True,
        ),
        SettingDef(
            "jupyter_pool_size",
            "Pre-started Jupyter kernels kept per project and kernel name.",
            "2",
            integer=True,
        ),
        SettingDef(
            "jupyter_pool_idle_timeout_s",
            "Seconds a project's unused kernel pool waits before it shrinks to one kernel.",
            "1800",
            integer=True,
        ),
        SettingDef(
            "jupyter_session_idle_timeout_s",
            "Seconds after which an unused persistent Jupyter session ends (0: never).",
            "1800",
            integer=True,
        ),
        SettingDef(
            "jupyter_api_enabled",
            "Whether Jupyter executes without a project run in the global pool project.",
            "no",
            choices=("yes", "no"),
        ),
        SettingDef(
            "jupyter_project_id",
            "The project the global Jupyter pool runs in (needs jupyter_api_enabled).",
            "",
        ),
        SettingDef(
            "exec_max_output",
            "Most characters project_exec returns per stream.",
            "10000000",
            integer=True,
        ),
    ]
}


def check_value(name: str, value: str) -> None:
    """Raise ValueError when `value` is not one the server can use for setting `name`."""
    definition = SETTINGS[name]
    if definition.choices and value not in definition.choices:
        raise ValueError(f"{name} must be one of {', '.join(definition.choices)}")
    if definition.integer:
        try:
            int(value)  # exactly what SiteSettings.get_int will do with it
        except ValueError:
            raise ValueError(f"{name} must be an integer") from None
    if definition.ranges:
        parse_ranges(value, name)


# Made by migration 0014; looked for before stored values are kept in memory.
TRIGGERS = {"settings_epoch_insert", "settings_epoch_update", "settings_epoch_delete"}
COUNTER = "settings_epoch"


class SiteSettings:
    """The stored values are kept in memory while the `settings_epoch` counter, moved by
    triggers on every change (by any hub, `calchub admin setting` or a query), stays put: a
    change is seen by the next request on every hub."""

    def __init__(self, engine: AsyncEngine, settings: Settings, counters: CounterReader) -> None:
        self._engine = engine
        self._settings = settings
        self._counters = counters
        self._checked = False
        self._kept: tuple[int, dict[str, Any]] | None = None

    async def all(self) -> dict[str, str]:
        stored = await self._stored()
        return {name: self._value(name, stored) for name in SETTINGS}

    async def get(self, name: str) -> str:
        return self._value(name, await self._stored())

    async def _stored(self) -> dict[str, Any]:
        if not self._checked:
            self._counters = await reader_if_triggers_exist(
                self._engine, self._counters, TRIGGERS, "site settings are read on every use"
            )
            self._checked = True
        # Read before the rows: a change committed in between leaves them under the old value.
        # A read begun after the served request arrived will do (calchub/arrivals.py).
        epoch = await self._counters.read(COUNTER, arrivals.served())
        if epoch is not None and self._kept is not None and self._kept[0] == epoch:
            return self._kept[1]
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(server_settings))).all()
        stored = {row.name: row.value for row in rows}
        self._kept = None if epoch is None else (epoch, stored)
        return stored

    async def get_int(self, name: str) -> int:
        return int(await self.get(name))

    def _value(self, name: str, stored: dict[str, Any]) -> str:
        if name in stored:
            return str(stored[name])
        default = SETTINGS[name].default
        if default is not None:
            return default
        dns = (
            stored.get("dns") or urlsplit(self._settings.resolved_site_url).hostname or "localhost"
        )
        return {"dns": dns, "organization_email": f"noreply@{dns}", "help_email": f"help@{dns}"}[
            name
        ]

    async def set(self, name: str, value: str | None) -> None:
        """Store a value (None restores the default); validates against the definition."""
        if name not in SETTINGS:
            raise ValueError(f"unknown setting {name!r}; known: {', '.join(sorted(SETTINGS))}")
        if value is not None:
            check_value(name, value)
        async with self._engine.begin() as conn:
            if value is None:
                await conn.execute(delete(server_settings).where(server_settings.c.name == name))
                return
            changed = await conn.execute(
                update(server_settings).where(server_settings.c.name == name).values(value=value)
            )
            if changed.rowcount == 0:
                await conn.execute(insert(server_settings).values(name=name, value=value))
