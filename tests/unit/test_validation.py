from __future__ import annotations

import uuid

import pytest

from calchub.api.v1 import messages as m
from calchub.api.v1.registry import DEFINITIONS
from calchub.api.v1.validation import InvalidParameters, build_message, coerce_form_value

PREFIX = "invalid parameters 'Error: misc.defaults -- TypeError: "


def test_defaults_and_generated_id() -> None:
    msg, msg_id = build_message(
        "project_exec", m.ProjectExec, {"project_id": "p", "command": "ls"}, from_form=False
    )
    assert isinstance(msg, m.ProjectExec)
    assert (msg.path, msg.args, msg.timeout, msg.bash, msg.err_on_exit) == ("", [], 10, False, True)
    uuid.UUID(msg_id)


def test_missing_is_reported_in_definition_order_before_unexpected() -> None:
    with pytest.raises(InvalidParameters) as info:
        build_message("project_exec", m.ProjectExec, {"zzz": 1}, from_form=False)
    assert info.value.message == PREFIX + "property 'project_id' must be specified: '"
    with pytest.raises(InvalidParameters) as info:
        build_message("project_exec", m.ProjectExec, {"project_id": "p", "zzz": 1}, from_form=False)
    assert info.value.message == PREFIX + "property 'command' must be specified: '"


def test_null_takes_the_default() -> None:
    msg, _ = build_message(
        "project_exec",
        m.ProjectExec,
        {"project_id": "p", "command": "ls", "timeout": None},
        from_form=False,
    )
    assert msg.timeout == 10


def test_json_is_taken_as_typed() -> None:
    with pytest.raises(InvalidParameters) as info:
        build_message("user_search", m.UserSearch, {"query": "x", "admin": "true"}, from_form=False)
    assert "property 'admin' is invalid" in info.value.message


def test_form_values_are_coerced() -> None:
    msg, _ = build_message(
        "user_search", m.UserSearch, {"query": "x", "admin": "false", "limit": "7"}, from_form=True
    )
    assert (msg.admin, msg.limit) == (False, 7)
    msg, _ = build_message("create_project", m.CreateProject, {"start": "true"}, from_form=True)
    assert msg.start is True


@pytest.mark.parametrize(
    ("annotation", "value", "expected"),
    [
        (bool, "1", True),
        (bool, "0", False),
        (bool, "maybe", "maybe"),
        (int | None, "12", 12),
        (float, "2.5", 2.5),
        (list[str], "one", ["one"]),
        (str | int, "5", "5"),
        (m.UuidOrList, ["a", "b"], ["a", "b"]),
    ],
)
def test_coerce_form_value(annotation: object, value: object, expected: object) -> None:
    assert coerce_form_value(annotation, value) == expected


def test_no_id_events_reject_id() -> None:
    with pytest.raises(InvalidParameters) as info:
        build_message("copy_path_delete", m.CopyPathDelete, {"id": "x"}, from_form=False)
    assert info.value.message == PREFIX + "got an unexpected argument 'id' '"


def test_registry_has_every_v1_event() -> None:
    documented = {
        "ping",
        "get_usernames",
        "create_account",
        "delete_account",
        "change_password",
        "change_email_address",
        "forgot_password",
        "reset_forgot_password",
        "unlink_passport",
        "user_auth",
        "user_search",
        "create_project",
        "touch_project",
        "disconnect_from_project",
        "add_license_to_project",
        "remove_license_from_project",
        "invite_collaborator",
        "add_collaborator",
        "remove_collaborator",
        "invite_noncloud_collaborators",
        "project_exec",
        "read_text_file_from_project",
        "write_text_file_to_project",
        "copy_path_between_projects",
        "copy_path_status",
        "copy_path_delete",
        "copy_public_path_between_projects",
        "public_get_text_file",
        "query",
        "get_syncdoc_history",
        "log_client_error",
        "create_support_ticket",
        "get_support_tickets",
        "get_available_upgrades",
        "stripe_get_customer",
        "stripe_customer",
        "stripe_plans",
        "stripe_create_source",
        "stripe_delete_source",
        "stripe_set_default_source",
        "stripe_update_source",
        "stripe_create_subscription",
        "stripe_cancel_subscription",
        "stripe_update_subscription",
        "stripe_get_subscriptions",
        "stripe_get_charges",
        "stripe_get_invoices",
        "stripe_get_coupon",
        "purchase_license",
        "metrics",
        "start_metrics",
    }
    assert documented <= set(DEFINITIONS)


def test_form_json_text_for_object_fields() -> None:
    query = '{"projects": [{"project_id": null, "title": null}]}'
    msg, _ = build_message("query", m.Query, {"query": query}, from_form=True)
    assert isinstance(msg, m.Query)
    assert msg.query == {"projects": [{"project_id": None, "title": None}]}
    msg, _ = build_message("query", m.Query, {"query": '[{"accounts": {}}]'}, from_form=True)
    assert isinstance(msg, m.Query) and msg.query == [{"accounts": {}}]
    # `options` takes any JSON: text that looks like JSON is parsed, other text stays text.
    assert coerce_form_value(m.Query.model_fields["options"].annotation, '[{"limit": 5}]') == [
        {"limit": 5}
    ]
    assert coerce_form_value(m.Query.model_fields["options"].annotation, "plain") == "plain"


def test_form_bracket_blanks_are_null() -> None:
    value = {"projects": [{"project_id": "p", "title": ""}]}
    msg, _ = build_message("query", m.Query, {"query": value}, from_form=True)
    assert isinstance(msg, m.Query)
    assert msg.query == {"projects": [{"project_id": "p", "title": None}]}


def test_form_json_text_errors_name_the_field() -> None:
    for text, reason in [
        ("{oops", "not valid JSON: "),
        ('{"a": 1e999}', "not valid JSON: number 1e999 is out of range"),
        ("[" * 100 + "]" * 100, "not valid JSON: nested too deeply"),
        ("projects", "expected an object (as JSON text), got 'projects'"),
    ]:
        with pytest.raises(InvalidParameters) as info:
            build_message("query", m.Query, {"query": text}, from_form=True)
        assert info.value.message.startswith(PREFIX + f"property 'query' is invalid: {reason}")


def test_non_finite_numbers_are_invalid() -> None:
    for value in (float("inf"), float("nan"), "inf", "nan"):
        with pytest.raises(InvalidParameters) as info:
            build_message(
                "project_exec",
                m.ProjectExec,
                {"project_id": "p", "command": "ls", "timeout": value},
                from_form=isinstance(value, str),
            )
        assert "property 'timeout' is invalid" in info.value.message
