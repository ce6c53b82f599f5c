"""calchub behind a real nginx, under a URL prefix, as docs/operating.md sets it up: the API
works through it, links in emails carry the public address, and client addresses are
believed only when they come from the configured proxy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from calchub.db.tables import accounts
from tests.api.test_cli import ServeProcess, clean_env
from tests.harness import Database, Loop, free_port, throwaway_database
from tests.scratch import scratch_folder

PREFIX = "/calchub"

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        # Metrics stay on the machine; Prometheus scrapes the hub directly.
        location = {prefix}/metrics {{ return 403; }}
        location {prefix}/ {{
            # The trailing slash strips the prefix; calchub puts it back (url_prefix).
            proxy_pass http://127.0.0.1:{hub_port}/;
            proxy_set_header Host $http_host;
            # Replace, do not append: a client's own X-Forwarded-For must not get through.
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            client_max_body_size 10m;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        message = "nginx is not installed (Debian: apt-get install nginx); .ci/run installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited:\n{log.read_text() if log.exists() else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("nginx did not start")


def reachable_roots() -> dict[str, str]:
    """Project and runtime folders project uids can reach (pytest's own folders are 0700)."""
    return {
        "CALCHUB_PROJECTS_ROOT": str(scratch_folder("p")),
        "CALCHUB_RUNTIME_ROOT": str(scratch_folder("r")),
    }


@dataclass
class ProxiedSite:
    public_url: str  # through nginx, prefix included
    hub_url: str  # calchub itself
    data_dir: Path
    admin_key: str
    db: Database

    def client(self, source: str, base_url: str | None = None) -> httpx.Client:
        """A client whose connections come from `source` (any 127.x address is local)."""
        transport = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=base_url or self.public_url, transport=transport, timeout=60)


@pytest.fixture
def proxied(tmp_path: Path, loop: Loop) -> Iterator[ProxiedSite]:
    nginx = nginx_binary()
    hub_port, nginx_port = free_port(), free_port()
    public_url = f"http://127.0.0.1:{nginx_port}{PREFIX}"
    with throwaway_database(tmp_path / "data" / "calchub.db", loop) as url:
        env = clean_env(
            CALCHUB_DATA_DIR=str(tmp_path / "data"),
            CALCHUB_DATABASE_URL=url,
            CALCHUB_SITE_URL=f"http://127.0.0.1:{nginx_port}",
            CALCHUB_URL_PREFIX=PREFIX,
            CALCHUB_FORWARDED_ALLOW_IPS="127.0.0.1",
            **reachable_roots(),
        )
        serve = ServeProcess(env, "--port", str(hub_port))
        conf_dir = tmp_path / "nginx"
        conf_dir.mkdir()
        conf = conf_dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(tmp=conf_dir, port=nginx_port, hub_port=hub_port, prefix=PREFIX)
        )
        proxy = subprocess.Popen(
            [nginx, "-p", str(conf_dir), "-c", str(conf), "-e", str(conf_dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        database = Database(url, loop)
        try:
            serve.wait_started()
            wait_for_port(nginx_port, proxy, conf_dir / "error.log")
            assert serve.api_key is not None
            hub_url = f"http://127.0.0.1:{hub_port}"
            yield ProxiedSite(public_url, hub_url, tmp_path / "data", serve.api_key, database)
        finally:
            proxy.terminate()
            proxy.wait(timeout=20)
            serve.stop()
            database.close()
    assert "calchub listening on" in serve.output


def create_account(http: httpx.Client, key: str) -> str:
    """Create an account as a non-admin key holder would; returns the new account's id."""
    reply = http.post(
        "/api/v1/create_account",
        auth=(key, ""),
        json={
            "first_name": "Via",
            "last_name": "Proxy",
            "email_address": f"proxied-{uuid.uuid4().hex[:8]}@example.org",
            "password": "correct horse",
            "agreed_to_terms": True,
        },
    ).json()
    assert reply.get("event") == "account_created", reply
    return str(reply["account_id"])


def created_from(site: ProxiedSite, account_id: str) -> str:
    rows = site.db.execute(select(accounts.c.created_by).where(accounts.c.account_id == account_id))
    return str(rows[0].created_by)


def test_the_api_through_nginx_under_a_prefix(proxied: ProxiedSite) -> None:
    with proxied.client("127.0.0.5") as http:
        ping = http.post("/api/v1/ping", auth=(proxied.admin_key, ""))
        assert ping.status_code == 200 and ping.json()["event"] == "pong"
        ready = http.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ready")
        assert http.get("/metrics").status_code == 403  # blocked at the proxy
        # Outside the prefix nginx serves nothing of calchub's.
        outside = http.post(f"http://127.0.0.1:{http.base_url.port}/api/v1/ping")
        assert outside.status_code == 404

        account_id = create_account(http, proxied.admin_key)
        reply = http.post(
            "/api/v1/user_search",
            auth=(proxied.admin_key, ""),
            json={"query": account_id, "admin": True},
        ).json()
        assert [r["account_id"] for r in reply["results"]] == [account_id]
        email = reply["results"][0]["email_address"]
        sent = http.post(
            "/api/v1/forgot_password", auth=(proxied.admin_key, ""), json={"email_address": email}
        ).json()
        assert sent["error"] is False, sent

    # The reset link points at the public address, prefix included.
    outbox = sorted((proxied.data_dir / "outbox").glob("*.eml"))
    messages = [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in outbox]
    resets = [m for m in messages if email in str(m["To"]) and "Reset" in str(m["Subject"])]
    assert len(resets) == 1
    body = resets[0].get_body(preferencelist=("plain",))
    assert body is not None
    assert f"{proxied.public_url}/app?forgot=" in body.get_content()

    # A proxy that passes the prefix on reaches the same routes.
    with proxied.client("127.0.0.1", proxied.hub_url) as direct:
        assert direct.get(f"{PREFIX}/healthz").json() == {"status": "ok"}
        assert direct.get("/healthz").json() == {"status": "ok"}


def test_client_addresses_are_believed_only_from_the_proxy(proxied: ProxiedSite) -> None:
    forged = {"X-Forwarded-For": "203.0.113.9"}
    with proxied.client("127.0.0.5") as http:
        through_proxy = create_account(http, proxied.admin_key)
    with proxied.client("127.0.0.6") as http:
        http.headers.update(forged)
        forged_through_proxy = create_account(http, proxied.admin_key)
    with proxied.client("127.0.0.7", proxied.hub_url) as http:
        http.headers.update(forged)
        forged_directly = create_account(http, proxied.admin_key)

    # nginx tells the hub who connected to it; its own client's claim is replaced.
    assert created_from(proxied, through_proxy) == "127.0.0.5"
    assert created_from(proxied, forged_through_proxy) == "127.0.0.6"
    # 127.0.0.7 is not a configured proxy: its X-Forwarded-For is ignored.
    assert created_from(proxied, forged_directly) == "127.0.0.7"
