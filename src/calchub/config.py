"""Server settings: command-line flags win over CALCHUB_* environment variables, which win
over a TOML config file (CALCHUB_CONFIG or --config), which wins over the defaults."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=lambda: Path("calchub-data"))
    # Empty means the embedded default: SQLite inside data_dir.
    database_url: str = ""
    # Empty means: write mail to data_dir/outbox instead of sending it.
    smtp_url: str = ""
    # Public address used in links inside emails; empty means http://host:port.
    site_url: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Proxies whose X-Forwarded-For is believed (comma separated; "*" trusts everyone).
    # None by default: any local process could otherwise claim any client address.
    forwarded_allow_ips: str = ""
    # A request's head must arrive within this many seconds (slow senders are cut off).
    header_timeout_s: float = 10.0
    # Idle keep-alive connections are closed after this many seconds.
    keep_alive_timeout_s: float = 5.0
    log_level: str = "info"
    # "text" (one line per record) or "json" (one JSON object per line, for log shippers).
    log_format: str = "text"
    # Serve under this path (e.g. "/calchub") as well as at the root, and put it into links.
    url_prefix: str = ""
    # Bearer token that opens /metrics to other hosts; without it only loopback may scrape.
    metrics_token: str = ""
    # Project homes; empty means data_dir/projects.
    projects_root: str = ""
    # Per-project sockets and state; empty means /run/calchub/<install> as root (each
    # install its own), else data_dir/run. Keep it short: Unix socket paths are limited to
    # about 100 bytes.
    runtime_root: str = ""
    # The machine-wide record of installs (their project uids and runtime folders), so that
    # two installs on one host never share them; empty means /var/lib/calchub/installs.json
    # as root (none otherwise).
    install_registry: str = ""
    # The project runtime backend: "local" (bubblewrap sandboxes on this machine), "fake"
    # (in-process, no isolation: tests only) or "package.module:Class".
    runtime: str = "local"
    # Run projects without a sandbox (every project as the server's user): development only.
    unsandboxed_projects: bool = False
    # How project homes are kept: "image" (a file system image per project, so the kernel
    # holds everything a project writes to its disk and inode quota), "none" (plain
    # folders: only the API's writes are checked) or "auto" (image where root, loop devices
    # and e2fsprogs are there, else none with a warning in the log).
    project_disk: str = "auto"
    # A running project's agent rests (one bare interpreter, its workers gone) after this
    # many seconds without requests; the next request then pays for waking it.
    project_quiet_after_s: float = 30.0
    # How often each hub looks for idle projects and pending start/stop requests.
    scheduler_interval_s: float = 15.0
    # A started copy whose hub has not reported for this long is taken over by another hub.
    copy_stale_after_s: float = 60.0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'calchub.db'}"

    @property
    def resolved_projects_root(self) -> Path:
        return Path(self.projects_root) if self.projects_root else self.data_dir / "projects"

    @property
    def resolved_site_url(self) -> str:
        """The public base of every link calchub writes, its URL prefix included."""
        base = self.site_url.rstrip("/") if self.site_url else f"http://{self.host}:{self.port}"
        if self.url_prefix and not urlsplit(base).path.endswith(self.url_prefix):
            base += self.url_prefix
        return base


_ENV_PREFIX = "CALCHUB_"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
PROJECT_DISK_MODES = ("auto", "image", "none")


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return text in ("1", "true", "yes")
    if kind == "Path":
        return Path(value)
    return str(value)


def load_settings(
    flags: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Combine the sources; `flags` holds only the options actually given on the command line."""
    env = dict(os.environ) if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}

    config_path = flags.pop("config", None) or env.get(f"{_ENV_PREFIX}CONFIG")
    if config_path:
        with open(config_path, "rb") as fh:
            try:
                document = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{config_path} is not valid TOML: {exc}") from None
        for key, value in document.items():
            if key not in known:
                raise ValueError(_unknown_name(key, config_path, known))
            values[key] = _coerce(key, value)
    for name in known:
        env_value = env.get(_ENV_PREFIX + name.upper())
        if env_value:
            values[name] = _coerce(name, env_value)
    for name, value in flags.items():
        if name in known:
            values[name] = _coerce(name, value)
    return _checked(replace(Settings(), **values))


def _unknown_name(key: str, config_path: str, known: set[str]) -> str:
    message = f"unknown setting {key!r} in {config_path}"
    if (spelled := key.strip().lower().replace("-", "_")) in known:
        message += f" (did you mean {spelled!r}?)"
    # The dataclass order groups related settings, which reads better than sorting.
    names = [f.name for f in fields(Settings)]
    return f"{message}; valid names: {', '.join(names)}"


def _checked(settings: Settings) -> Settings:
    """Refuse values the server would only trip over later, and normalise the URL prefix."""
    level = settings.log_level.lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    if settings.log_format not in LOG_FORMATS:
        raise ValueError(
            f"log_format must be one of {', '.join(LOG_FORMATS)}, not {settings.log_format!r}"
        )
    if settings.project_disk not in PROJECT_DISK_MODES:
        raise ValueError(
            f"project_disk must be one of {', '.join(PROJECT_DISK_MODES)}, "
            f"not {settings.project_disk!r}"
        )
    if not settings.project_quiet_after_s >= 0:
        raise ValueError("project_quiet_after_s must not be negative")
    prefix = settings.url_prefix.strip().strip("/")
    if any(c in prefix for c in "?#%{} ") or "//" in prefix:
        raise ValueError(f"url_prefix must be a plain path such as /calchub, not {prefix!r}")
    return replace(settings, log_level=level, url_prefix=f"/{prefix}" if prefix else "")
