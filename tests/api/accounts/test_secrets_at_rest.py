"""No password, API key or token handed out by the account tests is stored in clear."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from calchub.db.tables import (
    accounts,
    metadata,
)
from tests.api.accounts.helpers import (
    SECRETS,
    MakeUser,
    change_email,
    create,
    created,
    new_password,
    signup,
    unique_email,
)
from tests.harness import ApiClient, Database, Server

# --- secrets at rest -------------------------------------------------------------------------


def _files_to_search(server: Server) -> list[Path]:
    roots = [server.data_dir]
    if server.database_url.startswith("sqlite:///"):
        roots.append(Path(server.database_url.removeprefix("sqlite:///")).parent)
    if server.env.get("CALCHUB_RUNTIME_ROOT"):
        roots.append(Path(server.env["CALCHUB_RUNTIME_ROOT"]))
    return [path for root in roots for path in root.rglob("*") if path.is_file()]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:  # a temporary file that went away meanwhile
        return b""


def test_no_plaintext_secrets_at_rest(
    api: ApiClient, admin_key: str, new_user: MakeUser, server: Server, db: Database
) -> None:
    # Exercise every path that handles a secret, so this test stands on its own too.
    user = new_user()
    fresh = new_password()
    reply = api.call(
        "change_password",
        user.api_key,
        {"account_id": user.account_id, "old_password": user.password, "new_password": fresh},
    )
    assert reply.event == "changed_password" and "error" not in reply.body
    created(create(api, user.api_key, signup(get_api_key=True)))
    created(create(api, admin_key, form=signup(agreed_to_terms="true", get_api_key="true")))
    assert change_email(api, user.api_key, user.account_id, unique_email(), fresh)["error"] is False
    doomed = new_user()
    api.call("delete_account", doomed.api_key, {"account_id": doomed.account_id})

    secrets = sorted(SECRETS)
    assert len(secrets) > 10
    for path in _files_to_search(server):
        content = _read(path)
        for secret in secrets:
            assert secret.encode() not in content, f"{secret!r} found in {path}"

    for table in metadata.sorted_tables:
        for row in db.execute(select(table)):
            text = repr(tuple(row))
            for secret in secrets:
                assert secret not in text, f"{secret!r} found in table {table.name}"

    hashes = [r.password_hash for r in db.execute(select(accounts.c.password_hash))]
    assert any(hashes)
    for password_hash in hashes:
        assert password_hash is None or password_hash.startswith("$argon2id$"), password_hash
    # The server's own output does not echo keys or passwords either.
    log = "".join(server.output)
    for secret in secrets:
        assert secret not in log
