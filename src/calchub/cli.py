"""The `calchub` command: serve, admin ..., db upgrade, docs."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from calchub.config import Settings, load_settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (env CALCHUB_CONFIG)")
    parser.add_argument("--data-dir", help="data folder (env CALCHUB_DATA_DIR)")
    parser.add_argument(
        "--database-url", help="sqlite:///path or postgresql://... (env CALCHUB_DATABASE_URL)"
    )
    parser.add_argument("--smtp-url", help="smtp[s]://user:pass@host:port (env CALCHUB_SMTP_URL)")
    parser.add_argument("--site-url", help="public URL used in email links (env CALCHUB_SITE_URL)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calchub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--max-body-bytes", type=int, help="request body limit (default 10 MB)")
    serve.add_argument("--log-level", help="debug, info, warning, error")
    serve.add_argument(
        "--forwarded-allow-ips",
        help="proxies whose X-Forwarded-For is trusted, comma separated (default: none)",
    )
    serve.add_argument("--projects-root", help="project homes (default <data-dir>/projects)")
    serve.add_argument(
        "--runtime-root", help="per-project sockets (default /run/calchub as root); keep it short"
    )
    serve.add_argument(
        "--runtime", help="project runtime: local (sandboxes, default), fake (tests only)"
    )
    serve.add_argument(
        "--unsandboxed-projects",
        action="store_true",
        default=None,
        help="run projects WITHOUT isolation, as the server's user (development)",
    )

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    _common(db_sub.add_parser("upgrade", help="create or migrate the schema"))

    docs = sub.add_parser("docs", help="write the API status page generated from the registry")
    docs.add_argument("--output", default="docs/api.md")

    admin = sub.add_parser("admin", help="site administration")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create-account", help="create an account")
    _common(create)
    create.add_argument("--email", required=True)
    create.add_argument("--first-name", required=True)
    create.add_argument("--last-name", required=True)
    create.add_argument("--password")
    create.add_argument("--admin", action="store_true", help="member of the admin group")
    create.add_argument("--api-key", action="store_true", help="also create an API key")
    for name in ("ban", "unban"):
        action = admin_sub.add_parser(name, help=f"{name} an account")
        _common(action)
        action.add_argument("account_id")
    keys = admin_sub.add_parser("api-key", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="key_command", required=True)
    key_create = keys_sub.add_parser("create", help="create a key for an account")
    _common(key_create)
    key_create.add_argument("account_id")
    key_create.add_argument("--name", default="", help="a label to tell keys apart")
    key_revoke = keys_sub.add_parser("revoke", help="revoke a key by its id (see list)")
    _common(key_revoke)
    key_revoke.add_argument("key_id", type=int)
    key_list = keys_sub.add_parser("list", help="list keys (never the secrets)")
    _common(key_list)
    key_list.add_argument("--account-id")
    tickets = admin_sub.add_parser("ticket", help="work on support tickets")
    tickets_sub = tickets.add_subparsers(dest="ticket_command", required=True)
    ticket_list = tickets_sub.add_parser("list", help="open and pending tickets, oldest first")
    _common(ticket_list)
    ticket_list.add_argument("--all", action="store_true", help="include solved and closed ones")
    ticket_status = tickets_sub.add_parser("status", help="set a ticket's status")
    _common(ticket_status)
    ticket_status.add_argument("ticket_id", type=int)
    ticket_status.add_argument("status", help="open, pending, solved, closed or archived")
    setting = admin_sub.add_parser("setting", help="show or change site settings")
    _common(setting)
    setting.add_argument("name", nargs="?")
    setting.add_argument("value", nargs="?")
    setting.add_argument("--reset", action="store_true", help="restore the default")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    names = (
        "config",
        "data_dir",
        "database_url",
        "smtp_url",
        "site_url",
        "host",
        "port",
        "max_body_bytes",
        "log_level",
        "projects_root",
        "runtime_root",
        "runtime",
        "unsandboxed_projects",
        "forwarded_allow_ips",
    )
    return load_settings({name: getattr(args, name, None) for name in names})


def _with_hub(settings: Settings, action: Callable[[Any], Awaitable[Any]]) -> Any:
    from calchub.hub import Hub

    async def run() -> Any:
        hub = await Hub.open(settings)
        try:
            return await action(hub)
        finally:
            await hub.close()

    return asyncio.run(run())


def _print(value: Any) -> None:
    print(json.dumps(value, indent=None))


def _serve(settings: Settings) -> None:
    import uvicorn

    from calchub.admin import ensure_admin
    from calchub.app import build_app
    from calchub.http_protocol import head_deadline_protocol

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    created = _with_hub(settings, ensure_admin)
    if created:
        print(
            f"Created the admin account {created['email_address']} ({created['account_id']}).",
            flush=True,
        )
        print(f"Its API key, shown only now: {created['api_key']}", flush=True)
    print(
        f"calchub listening on http://{settings.host}:{settings.port} "
        f"(data in {settings.data_dir.resolve()})",
        flush=True,
    )
    uvicorn.run(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        lifespan="on",
        # Client addresses come from X-Forwarded-For only behind proxies the operator named.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        http=head_deadline_protocol(settings.header_timeout_s),
        timeout_keep_alive=int(settings.keep_alive_timeout_s),
    )


def _admin(args: argparse.Namespace, settings: Settings) -> None:
    from calchub import admin

    command = args.admin_command
    if command == "create-account":
        _print(
            _with_hub(
                settings,
                lambda hub: admin.admin_create_account(
                    hub,
                    email=args.email,
                    first_name=args.first_name,
                    last_name=args.last_name,
                    password=args.password,
                    admin=args.admin,
                    api_key=args.api_key,
                ),
            )
        )
    elif command in ("ban", "unban"):
        _with_hub(settings, lambda hub: admin.set_banned(hub, args.account_id, command == "ban"))
        _print({"account_id": args.account_id.lower(), "banned": command == "ban"})
    elif command == "api-key":
        if args.key_command == "create":
            _print(
                _with_hub(settings, lambda hub: admin.new_api_key(hub, args.account_id, args.name))
            )
        elif args.key_command == "revoke":
            _with_hub(settings, lambda hub: admin.remove_api_key(hub, args.key_id))
            _print({"revoked": args.key_id})
        else:
            _print(_with_hub(settings, lambda hub: admin.describe_api_keys(hub, args.account_id)))
    elif command == "ticket":
        _admin_ticket(args, settings)
    elif command == "setting":
        _admin_setting(args, settings)


def _admin_ticket(args: argparse.Namespace, settings: Settings) -> None:
    from calchub.support.tickets import list_tickets, set_status

    if args.ticket_command == "list":
        _print(_with_hub(settings, lambda hub: list_tickets(hub.engine, args.all)))
    else:
        _with_hub(settings, lambda hub: set_status(hub.engine, args.ticket_id, args.status))
        _print({"id": args.ticket_id, "status": args.status})


def _admin_setting(args: argparse.Namespace, settings: Settings) -> None:
    async def action(hub: Any) -> Any:
        if args.name and (args.value is not None or args.reset):
            await hub.site.set(args.name, None if args.reset else args.value)
        values = await hub.site.all()
        if args.name:
            if args.name not in values:
                raise ValueError(f"unknown setting {args.name!r}")
            return {args.name: values[args.name]}
        return values

    _print(_with_hub(settings, action))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "docs":
            from calchub.api.v1.docs import write_status_page

            write_status_page(Path(args.output))
            return
        settings = _settings(args)
        if args.command == "serve":
            _serve(settings)
        elif args.command == "db":
            # Opening the hub migrates the schema; nothing else to do.
            _with_hub(settings, lambda hub: asyncio.sleep(0))
            _print({"database": "up to date"})
        else:
            _admin(args, settings)
    except (ValueError, OSError) as exc:
        print(f"calchub: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        from calchub.errors import DomainError

        if isinstance(exc, DomainError):
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
