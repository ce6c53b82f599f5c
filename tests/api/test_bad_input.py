"""Input that once crashed the server: each gets a clear error (never a 500), and what is
well formed but unusual (a JSON string in a form field, a GET query string) works."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

from calchub.db.types import utcnow
from tests.api.queries import create
from tests.conftest import User
from tests.harness import ApiClient

INVALID = "invalid parameters 'Error: misc.defaults -- TypeError: property '{}' is invalid: "


def _raw(api: ApiClient, event: str, key: str, body: bytes, media: str) -> tuple[int, dict]:
    reply = api.call(event, key, content=body, headers={"Content-Type": media})
    assert isinstance(reply.body, dict), reply.body
    return reply.status, reply.body


def test_deep_query_is_refused_at_the_body(api: ApiClient, user: User) -> None:
    for depth in (65, 900, 5000):
        query = "[" * depth + "]" * depth
        body = f'{{"query": {{"projects": {query}}}}}'.encode()
        status, answer = _raw(api, "query", user.api_key, body, "application/json")
        assert status == 400, (depth, answer)
        assert answer["error"].startswith("invalid JSON body: nested too deeply"), answer
    # Within the limit, the query engine answers in its own words.
    nested: object = 1
    for _ in range(60):
        nested = {"a": nested}
    reply = api.call("query", user.api_key, {"query": {"projects": [{"title": nested}]}})
    assert reply.status == 200 and reply.event == "error", reply.body


def test_deep_form_keys_are_refused(api: ApiClient, user: User) -> None:
    key = "query" + "[a]" * 5000
    status, answer = _raw(
        api, "query", user.api_key, f"{key}=1".encode(), "application/x-www-form-urlencoded"
    )
    assert status == 400 and "more than 20 brackets" in answer["error"], answer
    status, answer = _raw(
        api, "query", user.api_key, b"query[a][999999999][b]=1", "application/x-www-form-urlencoded"
    )
    assert status == 400 and "array index 999999999" in answer["error"], answer


def test_non_finite_and_huge_numbers(api: ApiClient, user: User) -> None:
    # 1e999 parses to infinity: refused like the Infinity constant.
    status, answer = _raw(
        api, "user_search", user.api_key, b'{"query": "x", "limit": 1e999}', "application/json"
    )
    assert status == 400 and answer["error"].startswith("invalid JSON body: number 1e999"), answer
    for value in ("inf", "-Infinity", "nan"):
        reply = api.call(
            "project_exec",
            user.api_key,
            form={"project_id": user.account_id, "command": "true", "timeout": value},
        )
        assert reply.status == 400, (value, reply.body)
        assert reply["error"].startswith(INVALID.format("timeout")), reply.body
    reply = api.call("user_search", user.api_key, {"query": "nobody", "limit": 2**64})
    assert reply.event == "user_search_results", reply.body


def test_copy_timeout_beyond_any_integer(api: ApiClient, user: User) -> None:
    src, dst = create(api, user, "copy timeout src"), create(api, user, "copy timeout dst")
    when = (utcnow() + timedelta(days=1)).isoformat()
    for timeout in (2**64, 1e300):
        reply = api.call(
            "copy_path_between_projects",
            user.api_key,
            {
                "src_project_id": src,
                "src_path": "a.txt",
                "target_project_id": dst,
                "timeout": timeout,
                "scheduled": when,
            },
        )
        assert reply.event == "copy_path_between_projects_response", reply.body
        copy_id = reply["copy_path_id"]
        deleted = api.call("copy_path_delete", user.api_key, {"copy_path_id": copy_id})
        assert deleted.event == "copy_path_status_response", deleted.body


def test_long_user_search_query(api: ApiClient, user: User) -> None:
    reply = api.call("user_search", user.api_key, {"query": "a" * 60_000})
    assert (reply.status, reply.event) == (200, "error"), reply.body
    assert reply["error"] == "a name in the query is too long (at most 256 characters)"
    # Many short names are still searched.
    reply = api.call("user_search", user.api_key, {"query": ",".join(["ab"] * 150)})
    assert reply.event == "user_search_results", reply.body


def test_query_as_json_text_in_a_form(api: ApiClient, user: User) -> None:
    project_id = create(api, user, "form query")
    query = {"projects": [{"project_id": project_id, "title": None}]}
    expected = {"projects": [{"project_id": project_id, "title": "form query"}]}
    reply = api.call("query", user.api_key, form={"query": json.dumps(query)})
    assert reply.event == "query", reply.body
    assert reply["query"] == expected
    # curl -d 'query={...}' sends the JSON text unencoded: '+' would be a space, but JSON
    # needs none here.
    raw = b"query=" + json.dumps(query, separators=(",", ":")).encode()
    status, answer = _raw(api, "query", user.api_key, raw, "application/x-www-form-urlencoded")
    assert (status, answer["query"]) == (200, expected), answer
    status, answer = _raw(
        api, "query", user.api_key, b"query={not json", "application/x-www-form-urlencoded"
    )
    assert status == 400, answer
    assert answer["error"].startswith(INVALID.format("query") + "not valid JSON"), answer


def test_query_with_bracketed_form_keys(api: ApiClient, user: User) -> None:
    project_id = create(api, user, "bracket query")
    form = {"query[projects][0][project_id]": project_id, "query[projects][0][title]": ""}
    reply = api.call("query", user.api_key, form=form)
    assert reply.event == "query", reply.body
    assert reply["query"] == {"projects": [{"project_id": project_id, "title": "bracket query"}]}


def test_get_with_a_query_string(api: ApiClient, user: User) -> None:
    project_id = create(api, user, "get query")
    query = json.dumps({"projects": [{"project_id": project_id, "title": None}]})
    response = api.http.get(f"/api/v1/query?query={quote(query)}", auth=(user.api_key, ""))
    assert response.status_code == 200
    assert response.json()["query"]["projects"][0]["title"] == "get query"
    response = api.http.get("/api/v1/ping?id=from-get", auth=(user.api_key, ""))
    assert response.json()["id"] == "from-get"


def test_non_object_query_names_what_it_got(api: ApiClient, user: User) -> None:
    reply = api.call("query", user.api_key, form={"query": "projects"})
    assert reply.status == 400, reply.body
    assert reply["error"].startswith(INVALID.format("query")), reply.body
    assert reply["error"].endswith("expected an object (as JSON text), got 'projects''"), reply.body
