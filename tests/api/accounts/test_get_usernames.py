"""get_usernames over real HTTP."""

from __future__ import annotations

import uuid

from tests.api.accounts.helpers import (
    INVALID,
    MakeUser,
    invalid_parameters,
    must_be_specified,
)
from tests.harness import ApiClient

# --- get_usernames ---------------------------------------------------------------------------


def test_get_usernames(api: ApiClient, new_user: MakeUser) -> None:
    alice = new_user(first_name="Alice", last_name="Äpfel")
    bob = new_user(first_name="Bob", last_name="Builder")
    unknown = str(uuid.uuid4())
    ids = [alice.account_id, bob.account_id, unknown, alice.account_id]
    for key in (alice.api_key, bob.api_key):
        reply = api.call("get_usernames", key, {"account_ids": ids, "id": "u"})
        assert reply.body == {
            "event": "usernames",
            "id": "u",
            "usernames": {
                alice.account_id: {"first_name": "Alice", "last_name": "Äpfel"},
                bob.account_id: {"first_name": "Bob", "last_name": "Builder"},
                unknown: {},
            },
        }
    upper = alice.account_id.upper()
    reply = api.call("get_usernames", bob.api_key, {"account_ids": [upper]})
    assert reply["usernames"] == {upper: {"first_name": "Alice", "last_name": "Äpfel"}}


def test_get_usernames_admin_and_empty(api: ApiClient, admin_key: str, new_user: MakeUser) -> None:
    user = new_user()
    reply = api.call("get_usernames", admin_key, {"account_ids": [user.account_id]})
    assert reply["usernames"] == {
        user.account_id: {"first_name": user.first_name, "last_name": user.last_name}
    }
    reply = api.call("get_usernames", user.api_key, {"account_ids": []})
    assert reply.body == {"event": "usernames", "id": reply["id"], "usernames": {}}


def test_get_usernames_invalid_uuid(api: ApiClient, new_user: MakeUser) -> None:
    user = new_user()
    reply = api.call("get_usernames", user.api_key, {"account_ids": ["bad"], "id": 1})
    assert (reply.status, reply.body) == (
        200,
        {"event": "error", "id": 1, "error": 'invalid uuid bad in account_ids -- ["bad"]'},
    )
    ids = [user.account_id, "", "x-y"]
    reply = api.call("get_usernames", user.api_key, {"account_ids": ids})
    assert reply["error"] == (f'invalid uuid  in account_ids -- ["{user.account_id}","","x-y"]')
    almost = user.account_id[:-1] + "g"
    reply = api.call("get_usernames", user.api_key, {"account_ids": [almost]})
    assert reply["error"] == f'invalid uuid {almost} in account_ids -- ["{almost}"]'
    quoted = 'q"uote'
    reply = api.call("get_usernames", user.api_key, {"account_ids": [quoted]})
    assert reply["error"] == 'invalid uuid q"uote in account_ids -- ["q\\"uote"]'


def test_get_usernames_form_arrays(api: ApiClient, new_user: MakeUser) -> None:
    alice, bob = new_user(), new_user()
    expected = {
        alice.account_id: {"first_name": alice.first_name, "last_name": alice.last_name},
        bob.account_id: {"first_name": bob.first_name, "last_name": bob.last_name},
    }
    pair = [alice.account_id, bob.account_id]
    bodies = [
        f"account_ids[]={pair[0]}&account_ids[]={pair[1]}",
        f"account_ids[0]={pair[0]}&account_ids[1]={pair[1]}",
        f"account_ids={pair[0]}&account_ids={pair[1]}",
        f"account_ids%5B%5D={pair[0]}&account_ids%5B%5D={pair[1]}",
    ]
    for content in bodies:
        reply = api.call(
            "get_usernames",
            alice.api_key,
            content=content.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert reply.event == "usernames", (content, reply.body)
        assert reply["usernames"] == expected
    reply = api.call("get_usernames", alice.api_key, form={"account_ids": pair})
    assert reply["usernames"] == expected
    # One form value is a one-element array.
    reply = api.call("get_usernames", alice.api_key, form={"account_ids": bob.account_id})
    assert reply["usernames"] == {bob.account_id: expected[bob.account_id]}
    reply = api.call("get_usernames", alice.api_key, form={"account_ids[]": ["zz", "yy"]})
    assert reply["error"] == 'invalid uuid zz in account_ids -- ["zz","yy"]'


def test_get_usernames_bad_input(api: ApiClient, new_user: MakeUser) -> None:
    user = new_user()
    key = user.api_key
    must_be_specified(api.call("get_usernames", key, {}), "account_ids")
    must_be_specified(api.call("get_usernames", key, {"account_ids": None}), "account_ids")
    for value in (user.account_id, 5, {"a": user.account_id}, [1, 2], [None], [["x"]], True):
        invalid_parameters(api.call("get_usernames", key, {"account_ids": value}), "account_ids")
    invalid_parameters(
        api.call("get_usernames", key, {"account_ids": ["x" * 100_000]}), "account_ids"
    )
    many = [str(uuid.uuid4()) for _ in range(10_001)]
    invalid_parameters(api.call("get_usernames", key, {"account_ids": many}), "account_ids")
    reply = api.call("get_usernames", key, {"account_ids": [], "names": True})
    assert reply.body == {"error": f"{INVALID}got an unexpected argument 'names' '"}


def test_get_usernames_many_ids(api: ApiClient, new_user: MakeUser) -> None:
    user = new_user()
    ids = [str(uuid.uuid4()) for _ in range(9_999)] + [user.account_id]
    reply = api.call("get_usernames", user.api_key, {"account_ids": ids})
    assert reply.event == "usernames"
    assert len(reply["usernames"]) == len(ids)
    assert reply["usernames"][user.account_id]["first_name"] == user.first_name
