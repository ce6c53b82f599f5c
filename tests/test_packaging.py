"""The released artefacts: `python -m build` makes an sdist and a wheel from the project's
files alone, and the wheel, installed into a fresh virtualenv, runs a working server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from calchub import __version__
from tests.api.test_cli import clean_env
from tests.harness import backend, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(backend() != "sqlite", reason="the same on every database: run it once")
def test_the_wheel_installs_into_a_fresh_venv_and_serves(tmp_path: Path) -> None:
    # Build from a copy holding only what the package is made of, as a fresh clone would.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("calchub-*.whl")
    assert len(list(dist.glob("calchub-*.tar.gz"))) == 1
    names = zipfile.ZipFile(wheel).namelist()
    assert f"calchub-{__version__}.dist-info/licenses/LICENSE" in names
    assert "calchub/db/migrations/env.py" in names
    assert "calchub/runtime/agent/__main__.py" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    installed = subprocess.run(
        [venv / "bin" / "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    calchub = venv / "bin" / "calchub"
    version = subprocess.run([calchub, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"calchub {__version__}"

    port = free_port()
    # Run from elsewhere than the checkout, so nothing of it can be imported by accident.
    env = clean_env(CALCHUB_DATA_DIR=str(tmp_path / "data"), PYTHONPATH="")
    server = subprocess.Popen(
        [calchub, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            if "calchub listening on" in line:
                break
        output = "".join(lines)
        key = re.search(r"sk_[0-9A-Za-z]{24}", output)
        assert key, output
        assert "Traceback" not in output
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            pong = http.post("/api/v1/ping", auth=(key.group(0), "")).json()
            assert pong["event"] == "pong"
            assert http.get("/").json()["version"] == __version__
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert os.path.isfile(tmp_path / "data" / "calchub.db")
