"""/healthz, /readyz and /metrics, on a real server: what they answer, to whom, and that
the figures follow what the server and its database really do."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, insert, update

from calchub.db.tables import copy_paths, projects
from calchub.db.types import utcnow
from tests.api.project_files import create_project, sh
from tests.api.test_cli import ServeProcess, clean_env
from tests.conftest import User
from tests.harness import ApiClient, Database, Loop, Server, free_port, throwaway_database
from tests.smtp_sink import SmtpSink

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def scrape(api: ApiClient, **headers: str) -> dict[str, float]:
    """Every sample of /metrics as {'name{labels}': value}."""
    response = api.http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match, line
            samples[f"{match[1]}{match[2] or ''}"] = float(match[3])
    return samples


def requests_of(samples: dict[str, float], route: str, status: int) -> float:
    key = f'calchub_http_requests_total{{method="POST",route="{route}",status="{status}"}}'
    return samples.get(key, 0.0)


def test_healthz_and_readyz(api: ApiClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = api.http.get(path)
        assert response.status_code == 200, response.text
    assert api.http.get("/healthz").json() == {"status": "ok"}
    assert api.http.get("/readyz").json() == {
        "status": "ready",
        "checks": {"database": "ok", "projects": "ok"},
    }
    assert api.http.head("/readyz").status_code == 200


def test_requests_are_counted_by_route_template_never_by_raw_path(
    api: ApiClient, user: User
) -> None:
    before = scrape(api)
    for _ in range(3):
        assert api.call("ping", user.api_key).event == "pong"
    for name in ("no_such_event", f"made-up-{uuid.uuid4().hex}"):
        assert api.call(name, user.api_key).status == 400
    api.http.get(f"/scanner/{uuid.uuid4().hex}")
    after = scrape(api)

    def more(route: str, status: int) -> float:
        return requests_of(after, route, status) - requests_of(before, route, status)

    assert more("/api/v1/ping", 200) == 3
    assert more("/api/v1/{event}", 400) == 2
    assert after['calchub_http_requests_total{method="GET",route="(unmatched)",status="404"}'] >= 1
    assert not any("made-up" in key or "scanner" in key for key in after)
    count = 'calchub_http_request_duration_seconds_count{method="POST",route="/api/v1/ping"}'
    assert after[count] - before.get(count, 0) == 3
    assert after['calchub_info{version="0.1.0"}'] == 1
    assert after["calchub_database_up"] == 1
    assert after['calchub_db_pool_connections{state="size"}'] >= 1
    assert after["process_resident_memory_bytes"] > 0


def test_running_projects_and_the_copy_queue_are_read_from_the_database(
    api: ApiClient, user: User, db: Database
) -> None:
    project = create_project(api, user.api_key)
    assert sh(api, user.api_key, project, "echo hi") == "hi\n"
    running = scrape(api)["calchub_projects_running"]
    assert running >= 1
    # The scheduler carries out stop requests, as it does CoCalc's action_request.
    db.execute(
        update(projects)
        .where(projects.c.project_id == project)
        .values(action_request={"action": "stop"}, action_state="pending")
    )
    deadline = time.monotonic() + 30
    while scrape(api)["calchub_projects_running"] != running - 1:
        assert time.monotonic() < deadline, "the stopped project is still counted"
        time.sleep(0.2)

    queued = 'calchub_copies_pending{state="queued"}'
    before = scrape(api)[queued]
    copy_id = str(uuid.uuid4())
    # Scheduled for tomorrow: no hub picks it up while the test looks at the queue.
    db.execute(
        insert(copy_paths).values(
            id=copy_id,
            time=utcnow(),
            account_id=user.account_id,
            source_project_id=project,
            source_path="a",
            target_project_id=project,
            target_path="b",
            scheduled=utcnow() + timedelta(days=1),
        )
    )
    try:
        assert scrape(api)[queued] == before + 1
    finally:
        db.execute(delete(copy_paths).where(copy_paths.c.id == copy_id))
    assert scrape(api)[queued] == before


def test_commands_run_in_projects_are_counted_by_outcome(api: ApiClient, user: User) -> None:
    project = create_project(api, user.api_key)
    key = 'calchub_project_exec_duration_seconds_count{{outcome="{}"}}'
    before = scrape(api)
    assert sh(api, user.api_key, project, "echo hi") == "hi\n"
    failed = api.call(
        "project_exec",
        user.api_key,
        {"project_id": project, "command": "false", "err_on_exit": False},
    )
    assert failed["exit_code"] == 1, failed.body
    after = scrape(api)
    for outcome in ("ok", "error"):
        grew = after[key.format(outcome)] - before.get(key.format(outcome), 0.0)
        assert grew == 1, outcome


def test_sent_mail_is_counted(api: ApiClient, user: User, smtp: SmtpSink) -> None:
    sent = 'calchub_mail_sent_total{transport="smtp"}'
    before = scrape(api).get(sent, 0)
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email})
    assert reply.get("error") is False, reply.body
    deadline = time.monotonic() + 15
    while scrape(api).get(sent, 0) < before + 1:
        assert time.monotonic() < deadline, "the reset mail was not counted"
        time.sleep(0.1)


def test_metrics_are_refused_to_strangers_behind_the_proxy(api: ApiClient, server: Server) -> None:
    # The harness's server trusts X-Forwarded-For from 127.0.0.1, as behind a local proxy.
    stranger = api.http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert stranger.status_code == 403
    assert "calchub_" not in stranger.text
    assert stranger.json() == {
        "error": "metrics are served to loopback clients, or with the metrics token"
    }
    # Health answers everyone: load balancers and monitors ask from elsewhere.
    assert api.http.get("/readyz", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200


@pytest.fixture
def token_server(tmp_path: Path, loop: Loop) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []
    with throwaway_database(tmp_path / "data" / "calchub.db", loop) as url:

        def start(*args: str, **env: str) -> ServeProcess:
            serve = ServeProcess(
                clean_env(CALCHUB_DATA_DIR=str(tmp_path / "data"), CALCHUB_DATABASE_URL=url, **env),
                *args,
            )
            started.append(serve)
            serve.wait_started()
            return serve

        yield start
        for serve in started:
            serve.stop()


def test_the_metrics_token_opens_metrics_to_other_hosts(
    token_server: Callable[..., ServeProcess],
) -> None:
    token = uuid.uuid4().hex
    port = free_port()
    # The test stands in for a local proxy that forwards other hosts' requests.
    token_server(
        "--port", str(port), CALCHUB_METRICS_TOKEN=token, CALCHUB_FORWARDED_ALLOW_IPS="127.0.0.1"
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        far = {"X-Forwarded-For": "198.51.100.20"}
        assert http.get("/metrics", headers=far).status_code == 403
        wrong = {**far, "Authorization": "Bearer wrong"}
        assert http.get("/metrics", headers=wrong).status_code == 403
        right = {**far, "Authorization": f"Bearer {token}"}
        response = http.get("/metrics", headers=right)
        assert response.status_code == 200 and "calchub_projects_running" in response.text
        assert http.get("/metrics").status_code == 200  # loopback needs no token
