"""The `calchub` command: serve, admin ..., db upgrade, docs."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calchub import __version__
from calchub.config import LOG_FORMATS, LOG_LEVELS, Settings, load_settings

if TYPE_CHECKING:
    from calchub.hub import Hub

DESCRIPTION = (
    "A self-hostable server for CoCalc's HTTP API. Start it with `calchub serve`; the "
    "other commands work on the same data folder and database, beside a running server."
)


class ServeError(Exception):
    """The server cannot start (e.g. its port is taken); the message says why."""


# -- the parser ---------------------------------------------------------------------------


def _command(sub: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
    return parser


def _group(parser: argparse.ArgumentParser, dest: str) -> Any:
    """Subcommands under `parser`; without one, the group prints its own help."""
    parser.set_defaults(help_of=parser)
    return parser.add_subparsers(dest=dest, metavar="COMMAND", title="commands")


def _site_options(parser: argparse.ArgumentParser) -> None:
    """Where the site's data lives: what every command but `docs` needs."""
    parser.add_argument("--config", help="TOML config file (env CALCHUB_CONFIG)")
    parser.add_argument(
        "--data-dir", help="data folder (env CALCHUB_DATA_DIR; default ./calchub-data)"
    )
    parser.add_argument(
        "--database-url",
        help="sqlite:///path or postgresql://... (env CALCHUB_DATABASE_URL; "
        "default SQLite in the data folder)",
    )


def _admin_options(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    _site_options(parser)
    parser.add_argument(
        "--init",
        action="store_true",
        help="create the data folder and database if they do not exist yet "
        "(without it, a missing site is an error)",
    )
    if output:
        _json_option(parser)


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON for scripts instead of text"
    )


def _serve_parser(sub: Any) -> None:
    serve = _command(sub, "serve", "run the API server (creates the site on first start)")
    _site_options(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--smtp-url", help="smtp[s]://user:pass@host:port (env CALCHUB_SMTP_URL)")
    serve.add_argument("--site-url", help="public URL used in email links (env CALCHUB_SITE_URL)")
    serve.add_argument(
        "--url-prefix",
        help="serve under this path too, e.g. /calchub, and put it into links "
        "(env CALCHUB_URL_PREFIX)",
    )
    serve.add_argument("--max-body-bytes", type=int, help="request body limit (default 10 MB)")
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="least important records logged (default info, which includes the access log)",
    )
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text lines (default) or one JSON object per line; the log goes to stderr",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        help="proxies whose X-Forwarded-For is trusted, comma separated (default: none)",
    )
    serve.add_argument("--projects-root", help="project homes (default <data-dir>/projects)")
    serve.add_argument(
        "--runtime-root",
        help="per-project sockets (default /run/calchub/<install> as root); keep it short",
    )
    serve.add_argument(
        "--runtime",
        help="project runtime: local (sandboxes, default), slurm (jobs on a cluster), "
        "fake (tests only)",
    )
    serve.add_argument(
        "--unsandboxed-projects",
        action="store_true",
        default=None,
        help="run projects WITHOUT isolation, as the server's user (development)",
    )
    serve.add_argument(
        "--project-disk",
        choices=("auto", "image", "none"),
        help="homes as disk images that bind the disk quota (image), plain folders (none), "
        "or images where they work (auto, default)",
    )
    serve.add_argument(
        "--project-quiet-after",
        dest="project_quiet_after_s",
        type=float,
        metavar="SECONDS",
        help="a project's agent frees its workers after this long without requests (30)",
    )


def _admin_parser(sub: Any) -> None:
    admin = _command(sub, "admin", "site administration: accounts, API keys, settings, backups")
    admin_sub = _group(admin, "admin_command")

    create = _command(admin_sub, "create-account", "create an account")
    _admin_options(create)
    create.add_argument("--email", required=True)
    create.add_argument("--first-name", required=True)
    create.add_argument("--last-name", required=True)
    create.add_argument("--password", help="without one, the account signs in by API key only")
    create.add_argument("--admin", action="store_true", help="member of the admin group")
    create.add_argument("--api-key", action="store_true", help="also create an API key")
    for name, text in (("ban", "ban an account"), ("unban", "lift an account's ban")):
        action = _command(admin_sub, name, text)
        _admin_options(action)
        action.add_argument("account_id")

    accounts = _command(admin_sub, "accounts", "list and find accounts")
    accounts_sub = _group(accounts, "accounts_command")
    listing = _command(accounts_sub, "list", "list accounts, oldest first")
    _admin_options(listing)
    listing.add_argument("--admins", action="store_true", help="only members of the admin group")
    listing.add_argument("--deleted", action="store_true", help="include deleted accounts")
    find = _command(
        accounts_sub, "find", "find accounts by part of an email address or name, or an id"
    )
    _admin_options(find)
    find.add_argument("query")
    find.add_argument("--deleted", action="store_true", help="include deleted accounts")

    keys = _command(admin_sub, "api-key", "create, list, edit and delete API keys")
    keys_sub = _group(keys, "key_command")
    key_create = _command(keys_sub, "create", "create a key for an account (shown only once)")
    _admin_options(key_create)
    key_create.add_argument("account_id")
    key_create.add_argument("--name", default="", help="a label to tell keys apart")
    key_create.add_argument(
        "--expire", help="when the key stops working: ISO 8601 (UTC unless given), or never"
    )
    key_create.add_argument(
        "--project", help="scope the key to this project (the account must be a collaborator)"
    )
    key_edit = _command(keys_sub, "edit", "rename a key or change when it expires")
    _admin_options(key_edit)
    key_edit.add_argument("key_id", type=int)
    key_edit.add_argument("--name", help="a new label")
    key_edit.add_argument("--expire", help="ISO 8601 (UTC unless given), or never")
    for verb in ("delete", "revoke"):
        key_delete = _command(keys_sub, verb, "delete a key by its id (see list)")
        _admin_options(key_delete)
        key_delete.add_argument("key_id", type=int)
    key_list = _command(keys_sub, "list", "list keys (never the secrets)")
    _admin_options(key_list)
    key_list.add_argument("--account-id", help="only this account's keys")

    tickets = _command(admin_sub, "ticket", "list support tickets and set their status")
    tickets_sub = _group(tickets, "ticket_command")
    ticket_list = _command(tickets_sub, "list", "open and pending tickets, oldest first")
    _admin_options(ticket_list)
    ticket_list.add_argument("--all", action="store_true", help="include solved and closed ones")
    ticket_status = _command(tickets_sub, "status", "set a ticket's status")
    _admin_options(ticket_status)
    ticket_status.add_argument("ticket_id", type=int)
    ticket_status.add_argument("status", help="open, pending, solved, closed or archived")

    setting = _command(admin_sub, "setting", "show or change site settings")
    _admin_options(setting)
    setting.add_argument("name", nargs="?")
    setting.add_argument("value", nargs="?")
    setting.add_argument("--reset", action="store_true", help="restore the default")

    backup = _command(
        admin_sub,
        "backup",
        "copy the database and the project homes into a new folder, while the server runs",
    )
    _site_options(backup)
    _json_option(backup)
    backup.add_argument("dest", help="folder to create (must not exist, or be empty)")
    backup.add_argument("--projects-root", help="project homes (default <data-dir>/projects)")
    restore = _command(
        admin_sub,
        "restore",
        "bring a backup back into an empty data folder and database (server stopped)",
    )
    _site_options(restore)
    _json_option(restore)
    restore.add_argument("src", help="a folder made by `calchub admin backup`")
    restore.add_argument("--projects-root", help="project homes (default <data-dir>/projects)")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace an existing database and project homes (their contents are lost)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calchub", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"calchub {__version__}")
    sub = _group(parser, "command")
    _serve_parser(sub)

    db = _command(sub, "db", "database maintenance")
    db_sub = _group(db, "db_command")
    upgrade = _command(
        db_sub, "upgrade", "create or migrate the schema (serve also does this on start)"
    )
    _admin_options(upgrade)

    docs = _command(sub, "docs", "write the API status page generated from the registry")
    docs.add_argument(
        "--output",
        default="docs/api.md",
        help="the Markdown file to write (default docs/api.md, relative to the current folder)",
    )
    _admin_parser(sub)
    return parser


# -- running commands ---------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    names = ["config", *(f.name for f in fields(Settings))]
    return load_settings({name: getattr(args, name, None) for name in names})


def _with_hub(
    settings: Settings, action: Callable[[Hub], Awaitable[Any]], *, init: bool = True
) -> Any:
    """Open the site (refusing to create it unless `init`), run `action`, close it."""
    from calchub.datafolder import require_site
    from calchub.hub import Hub

    async def run() -> Any:
        await require_site(settings, init)
        hub = await Hub.open(settings)
        try:
            return await action(hub)
        finally:
            await hub.close()

    return asyncio.run(run())


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=None))


def _emit(args: argparse.Namespace, value: Any, text: str) -> None:
    """JSON with --json, else the sentence or table meant for people."""
    if getattr(args, "json", False):
        _print_json(value)
    else:
        print(text)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        # An ISO time: minutes are enough to tell entries apart at a glance.
        try:
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return value
    return " ".join(str(value).split())


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Rows as aligned columns under a header; `columns` is (key, title) pairs."""
    header = [title for _, title in columns]
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max([len(h), *(len(line[i]) for line in cells)]) for i, h in enumerate(header)]
    lines = [header, *cells]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


ACCOUNT_COLUMNS = (
    ("account_id", "ACCOUNT ID"),
    ("email_address", "EMAIL"),
    ("name", "NAME"),
    ("admin", "ADMIN"),
    ("banned", "BANNED"),
    ("created", "CREATED"),
    ("last_active", "LAST ACTIVE"),
)
KEY_COLUMNS = (
    ("id", "ID"),
    ("account_id", "ACCOUNT ID"),
    ("trunc", "KEY"),
    ("name", "NAME"),
    ("project_id", "PROJECT"),
    ("created", "CREATED"),
    ("expire", "EXPIRES"),
    ("last_used", "LAST USED"),
)
TICKET_COLUMNS = (
    ("id", "ID"),
    ("status", "STATUS"),
    ("created_at", "CREATED"),
    ("email_address", "FROM"),
    ("subject", "SUBJECT"),
)


def _accounts_table(found: list[dict[str, Any]]) -> str:
    if not found:
        return "No accounts."
    rows = [
        {**a, "name": f"{a['first_name'] or ''} {a['last_name'] or ''}".strip() or None}
        for a in found
    ]
    columns = list(ACCOUNT_COLUMNS)
    if any(a["deleted"] for a in found):
        columns.append(("deleted", "DELETED"))
    return table(rows, columns)


def _listen(host: str, port: int) -> socket.socket:
    """Bind and listen before anything announces the address: a taken port is an error
    here, not after a 'listening' line."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ServeError(f"cannot listen on {host}:{port}: {reason.lower()}") from None
    sock.set_inheritable(True)
    return sock


def _serve(settings: Settings) -> None:
    import uvicorn

    from calchub.admin import ensure_admin
    from calchub.app import build_app
    from calchub.http_protocol import head_deadline_protocol
    from calchub.listener import DrainingServer
    from calchub.logconfig import configure_logging, flush_logs

    configure_logging(settings.log_level, settings.log_format)
    sock = _listen(settings.host, settings.port)
    created = _with_hub(settings, ensure_admin)
    if created:
        print(
            f"Created the admin account {created['email_address']} ({created['account_id']}).",
            flush=True,
        )
        print(f"Its API key, shown only now: {created['api_key']}", flush=True)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    announcement = (
        f"calchub listening on http://{shown}:{port}{settings.url_prefix} "
        f"(data in {settings.data_dir.resolve()})"
    )

    http_protocol = head_deadline_protocol(settings.header_timeout_s)
    config = uvicorn.Config(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        access_log=True,
        lifespan="on",
        # Client addresses come from X-Forwarded-For only behind proxies the operator named.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        http=http_protocol,
        timeout_keep_alive=int(settings.keep_alive_timeout_s),
    )
    server = DrainingServer(config, sock, http_protocol, announcement)
    server.run(sockets=[sock])
    flush_logs()
    if not server.started:
        sys.exit(3)


def _admin(args: argparse.Namespace, settings: Settings) -> None:
    from calchub import admin

    command = args.admin_command
    init = bool(getattr(args, "init", False))

    def run(action: Callable[[Hub], Awaitable[Any]]) -> Any:
        return _with_hub(settings, action, init=init)

    if command == "create-account":
        created = run(
            lambda hub: admin.admin_create_account(
                hub,
                email=args.email,
                first_name=args.first_name,
                last_name=args.last_name,
                password=args.password,
                admin=args.admin,
                api_key=args.api_key,
            )
        )
        text = f"Created account {created['account_id']} ({args.email.strip().lower()})."
        if "api_key" in created:
            text += f"\nIts API key, shown only now: {created['api_key']}"
        _emit(args, created, text)
    elif command in ("ban", "unban"):
        run(lambda hub: admin.set_banned(hub, args.account_id, command == "ban"))
        account_id = args.account_id.lower()
        state = "banned" if command == "ban" else "no longer banned"
        _emit(
            args,
            {"account_id": account_id, "banned": command == "ban"},
            f"Account {account_id} is {state}.",
        )
    elif command == "accounts":
        found = run(
            lambda hub: admin.find_accounts(
                hub,
                getattr(args, "query", None),
                admins_only=getattr(args, "admins", False),
                deleted=args.deleted,
            )
        )
        _emit(args, found, _accounts_table(found))
    elif command == "api-key":
        _admin_api_key(args, run)
    elif command == "ticket":
        _admin_ticket(args, run)
    elif command == "setting":
        _admin_setting(args, run)
    elif command == "backup":
        from calchub.backup import backup, describe_backup

        manifest = run(lambda hub: backup(hub, Path(args.dest)))
        _emit(args, manifest, describe_backup(Path(args.dest), manifest))
    elif command == "restore":
        from calchub.backup import describe_restore, restore

        manifest = asyncio.run(restore(settings, Path(args.src), force=args.force))
        _emit(args, manifest, describe_restore(Path(args.src), settings, manifest))


def _admin_api_key(
    args: argparse.Namespace, run: Callable[[Callable[[Hub], Awaitable[Any]]], Any]
) -> None:
    from calchub import admin

    if args.key_command == "create":
        created = run(
            lambda hub: admin.new_api_key(
                hub, args.account_id, args.name, expire=args.expire, project_id=args.project
            )
        )
        scope = (
            f"project {created['project_id']}"
            if created["project_id"]
            else f"account {created['account_id']}"
        )
        _emit(
            args,
            created,
            f"New API key {created['id']} for {scope}, shown only now: {created['api_key']}",
        )
    elif args.key_command == "edit":
        edited = run(
            lambda hub: admin.edit_api_key(hub, args.key_id, name=args.name, expire=args.expire)
        )
        _emit(args, edited, table([edited], KEY_COLUMNS))
    elif args.key_command in ("delete", "revoke"):
        run(lambda hub: admin.remove_api_key(hub, args.key_id))
        _emit(args, {"deleted": args.key_id}, f"Deleted API key {args.key_id}.")
    else:
        keys = run(lambda hub: admin.describe_api_keys(hub, args.account_id))
        _emit(args, keys, table(keys, KEY_COLUMNS) if keys else "No API keys.")


def _admin_ticket(
    args: argparse.Namespace, run: Callable[[Callable[[Hub], Awaitable[Any]]], Any]
) -> None:
    from calchub.support.tickets import list_tickets, set_status

    if args.ticket_command == "list":
        tickets = run(lambda hub: list_tickets(hub.engine, args.all))
        _emit(args, tickets, table(tickets, TICKET_COLUMNS) if tickets else "No tickets.")
    else:
        run(lambda hub: set_status(hub.engine, args.ticket_id, args.status))
        _emit(
            args,
            {"id": args.ticket_id, "status": args.status},
            f"Ticket {args.ticket_id} is now {args.status}.",
        )


def _admin_setting(
    args: argparse.Namespace, run: Callable[[Callable[[Hub], Awaitable[Any]]], Any]
) -> None:
    async def action(hub: Hub) -> Any:
        if args.name and (args.value is not None or args.reset):
            await hub.site.set(args.name, None if args.reset else args.value)
        values = await hub.site.all()
        if args.name:
            if args.name not in values:
                raise ValueError(f"unknown setting {args.name!r}")
            return {args.name: values[args.name]}
        return values

    values = run(action)
    rows = [{"name": name, "value": value} for name, value in values.items()]
    _emit(args, values, table(rows, (("name", "NAME"), ("value", "VALUE"))))


def _db(args: argparse.Namespace, settings: Settings) -> None:
    from calchub.db.engine import current_revision

    # Opening the hub migrates the schema; what is left is to say where it stands.
    revision = _with_hub(settings, lambda hub: current_revision(hub.engine), init=args.init)
    _emit(
        args,
        {"database": "up to date", "revision": revision},
        f"The database is up to date (schema revision {revision}).",
    )


def _help_requested(args: argparse.Namespace) -> bool:
    """A command group given without its subcommand (or bare `calchub`): show its help."""
    groups = ("command", "db_command", "admin_command", "accounts_command", "key_command")
    if any(getattr(args, dest, "") is None for dest in (*groups, "ticket_command")):
        args.help_of.print_help()
        return True
    return False


def main(argv: list[str] | None = None) -> None:
    # Everything the server writes (database, its journals, backups, mail, logs, runtime
    # state) is for its own user only; files meant for others set their modes explicitly.
    os.umask(0o077)
    args = build_parser().parse_args(argv)
    if _help_requested(args):
        return
    try:
        if args.command == "docs":
            from calchub.api.v1.docs import write_status_page
            from calchub.api.v2.docs import write_v2_page

            output = Path(args.output)
            write_status_page(output)
            # The v2 route list goes beside it (docs/api-v2.md by default).
            write_v2_page(output.with_name("api-v2.md"))
            return
        settings = _settings(args)
        if args.command == "serve":
            _serve(settings)
            return
        from calchub.datafolder import describe

        # Say which site this is: the same command in another folder acts on another site.
        verb = "restoring into" if getattr(args, "admin_command", None) == "restore" else "using"
        print(f"calchub: {verb} {describe(settings)}", file=sys.stderr, flush=True)
        if args.command == "db":
            _db(args, settings)
        else:
            _admin(args, settings)
    except ServeError as exc:
        print(f"calchub: {exc}", file=sys.stderr)
        sys.exit(1)
    except (ValueError, OSError) as exc:
        print(f"calchub: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        from calchub.backup import BackupError
        from calchub.datafolder import NoSite
        from calchub.errors import DomainError

        if isinstance(exc, DomainError | NoSite | BackupError):
            print(f"calchub: {exc}", file=sys.stderr)
            sys.exit(1)
        if isinstance(exc, SQLAlchemyError):
            # A database that is missing, refuses us or is in a bad state: say so, briefly.
            reason = getattr(exc, "orig", None) or exc
            print(f"calchub: database error: {reason}", file=sys.stderr)
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
