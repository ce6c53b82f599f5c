from __future__ import annotations

from pathlib import Path

import pytest

from calchub.config import DEFAULT_MAX_BODY_BYTES, load_settings
from calchub.db.engine import async_url


def test_defaults() -> None:
    settings = load_settings({}, env={})
    assert settings.port == 8080 and settings.host == "127.0.0.1"
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.resolved_database_url.endswith("calchub-data/calchub.db")
    assert settings.resolved_site_url == "http://127.0.0.1:8080"


def test_flags_beat_env_beat_file(tmp_path: Path) -> None:
    config = tmp_path / "calchub.toml"
    config.write_text('port = 7000\nsmtp_url = "smtp://file"\nhost = "::1"\n')
    env = {"CALCHUB_CONFIG": str(config), "CALCHUB_PORT": "7001", "CALCHUB_DATA_DIR": "/env"}
    settings = load_settings({"data_dir": "/flag", "port": None}, env=env)
    assert settings.port == 7001
    assert settings.data_dir == Path("/flag")
    assert settings.smtp_url == "smtp://file"
    assert settings.host == "::1"


def test_unknown_key_in_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(ValueError, match="unknown setting 'prot'"):
        load_settings({"config": str(config)}, env={})


def test_database_urls() -> None:
    assert async_url("sqlite:////x/y.db") == "sqlite+calchub_aiosqlite:////x/y.db"
    assert async_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    with pytest.raises(ValueError, match="unsupported database URL"):
        async_url("mysql://h/db")


def test_project_disk_mode() -> None:
    assert load_settings(env={}).project_disk == "auto"
    assert load_settings(env={"CALCHUB_PROJECT_DISK": "image"}).project_disk == "image"
    assert load_settings({"project_disk": "none"}, env={}).project_disk == "none"
    with pytest.raises(ValueError, match="project_disk must be one of auto, image, none"):
        load_settings(env={"CALCHUB_PROJECT_DISK": "xfs"})


def test_project_quiet_after() -> None:
    assert load_settings(env={}).project_quiet_after_s == 30.0
    env = {"CALCHUB_PROJECT_QUIET_AFTER_S": "2.5"}
    assert load_settings(env=env).project_quiet_after_s == 2.5
    with pytest.raises(ValueError, match="project_quiet_after_s must not be negative"):
        load_settings(env={"CALCHUB_PROJECT_QUIET_AFTER_S": "-1"})
