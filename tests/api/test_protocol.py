"""The v1 protocol over real HTTP: authentication, bodies, validation, envelopes."""

from __future__ import annotations

import base64
import socket
import uuid

from tests.harness import ApiClient, Server


def test_ping_with_basic_auth(api: ApiClient, admin_key: str) -> None:
    reply = api.call("ping", admin_key)
    assert reply.status == 200
    assert reply.event == "pong"
    uuid.UUID(reply["id"])
    assert reply["now"].endswith("Z") and len(reply["now"]) == 24


def test_ping_with_bearer_and_get(api: ApiClient, admin_key: str) -> None:
    assert api.call("ping", admin_key, bearer=True).event == "pong"
    response = api.http.get("/api/v1/ping", auth=(admin_key, ""))
    assert response.status_code == 200 and response.json()["event"] == "pong"


def test_id_is_echoed_from_json_and_form(api: ApiClient, admin_key: str) -> None:
    assert api.call("ping", admin_key, {"id": "my-id"})["id"] == "my-id"
    assert api.call("ping", admin_key, {"id": {"any": ["json"]}})["id"] == {"any": ["json"]}
    assert api.call("ping", admin_key, form={"id": "form-id"})["id"] == "form-id"
    # null means "absent": a fresh uuid
    uuid.UUID(api.call("ping", admin_key, {"id": None})["id"])


def test_missing_authorization(api: ApiClient) -> None:
    reply = api.call("ping", None)
    assert reply.status == 400
    assert reply.body == {"error": "You must provide authentication via an API key."}


def test_unknown_authorization_type(api: ApiClient) -> None:
    reply = api.call("ping", None, headers={"Authorization": "Digest abc"})
    assert (reply.status, reply.body) == (400, {"error": "Unknown authorization type 'Digest'"})
    reply = api.call("ping", None, headers={"Authorization": ""})
    assert reply.body == {"error": "Unknown authorization type 'undefined'"}


def test_wrong_and_blank_keys(api: ApiClient) -> None:
    wrong = {"error": "No account found. Is your API key wrong?"}
    for key in ["sk_wrongwrongwrongwrongwrong", "", "not-a-key", "sk_" + "x" * 5000]:
        reply = api.call("ping", key)
        assert (reply.status, reply.body) == (400, wrong), key
    assert api.call("ping", None, headers={"Authorization": "Bearer"}).body == wrong
    # Basic with garbage that is not base64, and with nothing after it
    assert api.call("ping", None, headers={"Authorization": "Basic %%%"}).body == wrong
    assert api.call("ping", None, headers={"Authorization": "Basic"}).body == wrong
    encoded = base64.b64encode(b"sk_nope:ignored").decode()
    assert api.call("ping", None, headers={"Authorization": f"Basic {encoded}"}).body == wrong


def test_unknown_endpoint_and_non_api(api: ApiClient, admin_key: str) -> None:
    assert api.call("no_such_thing", admin_key).body == {
        "error": "unknown endpoint 'no_such_thing'"
    }
    assert api.call("sign_in", admin_key).body == {
        "error": "endpoint 'sign_in' is not part of the HTTP API"
    }
    reply = api.call("stripe_plans", admin_key, {"plans": []})
    assert reply.body == {"error": "unknown message event type 'stripe_plans'"}
    # The event is the last path segment; a trailing slash names the empty event.
    response = api.http.post("/api/v1/x/ping", auth=(admin_key, ""))
    assert response.json()["event"] == "pong"
    response = api.http.post("/api/v1/ping/", auth=(admin_key, ""))
    assert response.json() == {"error": "unknown endpoint ''"}
    # An escaped ?, # or backslash in the segment stays escaped: never read as a query or fragment.
    for escaped in ("%3F", "%23", "%5C"):
        response = api.http.post(f"/api/v1/ping{escaped}x", auth=(admin_key, ""))
        assert response.json() == {"error": f"unknown endpoint 'ping{escaped}x'"}, escaped


def test_every_event_is_implemented(api: ApiClient, admin_key: str) -> None:
    """No v1 event answers 501 any more: each dispatchable one has a handler."""
    import calchub.api.v1.handlers  # noqa: F401  (registers what is implemented)
    from calchub.api.v1.registry import DEFINITIONS, status

    assert [event for event in sorted(DEFINITIONS) if status(event) == "planned"] == []
    reply = api.call("stripe_get_customer", admin_key, {})
    assert reply.status == 200 and reply["error"] == "billing is not configured on this server"


def test_missing_required_and_unexpected(api: ApiClient, admin_key: str) -> None:
    reply = api.call("get_usernames", admin_key, {})
    assert (reply.status, reply.body) == (
        400,
        {
            "error": "invalid parameters 'Error: "
            "misc.defaults -- TypeError: property 'account_ids' must be specified: '"
        },
    )
    reply = api.call("ping", admin_key, {"foo": 1})
    assert reply.body == {
        "error": "invalid parameters 'Error: misc.defaults -- TypeError: "
        "got an unexpected argument 'foo' '"
    }
    # missing is reported before unexpected; null counts as missing
    reply = api.call("get_usernames", admin_key, {"account_ids": None, "foo": 1})
    assert "property 'account_ids' must be specified" in reply["error"]


def test_event_in_body_is_rejected(api: ApiClient, admin_key: str) -> None:
    reply = api.call("ping", admin_key, {"event": "ping"})
    assert reply.status == 400
    assert reply["error"].startswith(
        "invalid parameters 'Error: ValueError: must not define 'event' when calling message "
        'creation function (opts={"event":"ping"}, obj='
    )


def test_json_array_body(api: ApiClient, admin_key: str) -> None:
    reply = api.call("ping", admin_key, ["a"])
    assert "got an unexpected argument '0'" in reply["error"]


def test_wrong_types_are_invalid_parameters(api: ApiClient, admin_key: str) -> None:
    reply = api.call("user_search", admin_key, {"query": 5})
    assert reply.status == 400
    assert reply["error"].startswith(
        "invalid parameters 'Error: misc.defaults -- TypeError: property 'query' is invalid"
    )
    reply = api.call("user_search", admin_key, {"query": "x", "limit": "ten"})
    assert "property 'limit' is invalid" in reply["error"]
    reply = api.call("user_search", admin_key, form={"query": "x", "limit": "ten"})
    assert "property 'limit' is invalid" in reply["error"]
    reply = api.call("get_usernames", admin_key, {"account_ids": {"a": 1}})
    assert "property 'account_ids' is invalid" in reply["error"]


def test_huge_values_are_rejected(api: ApiClient, admin_key: str) -> None:
    reply = api.call("user_search", admin_key, {"query": "x" * 200_000})
    assert reply.status == 400 and "property 'query' is invalid" in reply["error"]
    reply = api.call("user_search", admin_key, {"query": "x", "limit": 10**40})
    assert reply.status in (200, 400)
    assert isinstance(reply.body, dict)


def test_malformed_json_is_a_json_400(api: ApiClient, admin_key: str) -> None:
    reply = api.call(
        "ping", admin_key, content=b"{bad", headers={"Content-Type": "application/json"}
    )
    assert reply.status == 400
    assert reply["error"].startswith("invalid JSON body: ")
    reply = api.call(
        "ping", admin_key, content=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert reply.status == 400 and reply["error"].startswith("invalid JSON body: ")


def test_body_limit(api: ApiClient, admin_key: str) -> None:
    big = b'{"id":"' + b"x" * (11 * 1024 * 1024) + b'"}'
    reply = api.call("ping", admin_key, content=big, headers={"Content-Type": "application/json"})
    assert reply.status == 413
    assert reply["error"] == "request body too large (limit 10485760 bytes)"


def test_other_content_type_means_empty_body(api: ApiClient, admin_key: str) -> None:
    reply = api.call("ping", admin_key, content=b"whatever", headers={"Content-Type": "text/plain"})
    assert reply.event == "pong"


def test_form_coercion(api: ApiClient, admin_key: str, server: Server) -> None:
    # bool "false" means false (not a truthy string), ints become ints, arrays from repeats
    reply = api.call(
        "user_search", admin_key, form={"query": "nobody", "admin": "false", "limit": "5"}
    )
    assert reply.event == "user_search_results"
    response = api.http.post(
        "/api/v1/get_usernames",
        auth=(admin_key, ""),
        content=b"account_ids[]=bad1&account_ids[]=bad2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.json()["error"] == 'invalid uuid bad1 in account_ids -- ["bad1","bad2"]'


def test_banned_user(api: ApiClient, server: Server, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    server.cli("admin", "ban", user.account_id)
    reply = api.call("ping", user.api_key)
    assert reply.status == 400
    assert reply["error"].startswith("User is BANNED.  If this is a mistake, please contact ")
    server.cli("admin", "unban", user.account_id)
    assert api.call("ping", user.api_key).event == "pong"


def test_errors_are_never_html(api: ApiClient, admin_key: str) -> None:
    for content_type in ["application/json", "application/x-www-form-urlencoded"]:
        reply = api.call(
            "ping", admin_key, content=b"%%%\x00{", headers={"Content-Type": content_type}
        )
        assert isinstance(reply.body, dict), reply.body


def test_nul_characters_are_invalid_parameters(api: ApiClient, admin_key: str) -> None:
    reply = api.call("user_search", admin_key, {"query": "a\x00b"})
    assert reply.status == 400
    assert reply["error"] == (
        "invalid parameters 'Error: misc.defaults -- TypeError: property 'query' is invalid: "
        "strings must not contain NUL characters'"
    )
    reply = api.call("user_search", admin_key, form={"query": "a\x00b"})
    assert reply.status == 400


def test_deeply_nested_json(api: ApiClient, admin_key: str) -> None:
    body = b'{"id":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    reply = api.call("ping", admin_key, content=body, headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert reply["error"].startswith("invalid JSON body")


def test_non_json_constants_are_rejected(api: ApiClient, admin_key: str) -> None:
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        reply = api.call(
            "ping",
            admin_key,
            content=b'{"id":' + constant + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert reply.status == 400
        assert reply["error"].startswith("invalid JSON body: ")


def _raw_request(server: Server, head: str, body_start: bytes, wait_s: float = 5.0) -> bytes:
    """Send the headers and only the start of a body, then read what comes back."""
    host, port = server.url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=wait_s) as conn:
        conn.sendall(head.encode() + b"\r\n\r\n" + body_start)
        while b"\r\n\r\n" not in answer or not _complete(answer):
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
    return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return True


def test_a_keyless_request_is_refused_before_its_body_is_read(server: Server) -> None:
    """A sender without a key announces 9 MB and sends 10 bytes: the refusal comes at once,
    without waiting for (let alone parsing) the rest."""
    head = (
        "POST /api/v1/ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 9000000"
    )
    answer = _raw_request(server, head, b"[1,2,3,4,5")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"You must provide authentication via an API key." in answer
    wrong = head + "\r\nAuthorization: Bearer sk_wrongwrongwrongwrongwrong"
    answer = _raw_request(server, wrong, b"[1,2,3,4,5")
    assert b"No account found. Is your API key wrong?" in answer


def test_anonymous_bodies_are_small(api: ApiClient) -> None:
    body = {"project_id": str(uuid.uuid4()), "path": "x" * 70_000}
    reply = api.call("public_get_text_file", "", body)
    assert reply.status == 413
    assert reply["error"] == "request body too large (limit 65536 bytes)"
    reply = api.call("public_get_text_file", "", {"project_id": str(uuid.uuid4()), "path": "a"})
    assert reply.status == 200 and reply.event == "error"
