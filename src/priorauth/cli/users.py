"""`priorauth users add|list|disable|enable|unlock|remove-demo`: web app accounts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from priorauth.cli.exits import Exit, fatal

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

users_app = typer.Typer(
    help="Manage web app users (reviewers).", no_args_is_help=True, rich_markup_mode=None
)


def _sessions() -> sessionmaker[Session]:
    from priorauth.cli.server import open_engine
    from priorauth.settings import Settings
    from priorauth.store.db import SchemaOutOfDate, check_schema, session_factory

    try:
        settings = Settings.from_env()
    except ValueError as e:
        fatal(str(e))
    engine = open_engine(settings.database_url)
    try:
        check_schema(engine)
    except SchemaOutOfDate as e:
        fatal(str(e), Exit.BAD_INPUT)
    return session_factory(engine)


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="the username to sign in with")],
    role: Annotated[str, typer.Option(help="intake or medical_director")],
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="shown in the app and on letters")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Create a user; the password is prompted for (twice) unless --password-stdin."""
    from priorauth.service.users import UserError, create_user

    role = role.replace("-", "_")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(_sessions(), name, role, password, display_name)
    except UserError as e:
        fatal(str(e))
    typer.echo(f"created {user.username} ({user.role_label})")


@users_app.command("list")
def list_users() -> None:
    """Every user with its role and whether it may sign in."""
    from priorauth.service.users import all_users

    for user, demo in all_users(_sessions()):
        state = "active" if user.active else "inactive"
        if demo:
            state += " (demo)"
        typer.echo(f"{user.username}\t{user.role_label}\t{state}\t{user.display_name}")


@users_app.command("unlock")
def unlock(
    name: Annotated[
        str | None, typer.Argument(help="the user whose sign-in lockout to lift")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="lift an address's lockout instead")
    ] = None,
) -> None:
    """Lift a sign-in lockout (too many failed passwords) and forget the failures."""
    from datetime import UTC, datetime

    from priorauth.service.throttle import Limits, Throttle

    if (name is None) == (address is None):
        fatal("name a user, or give --address, not both")
    throttle = Throttle(_sessions(), Limits(), lambda: datetime.now(UTC))
    lifted = (
        throttle.unlock(username=name) if name is not None else throttle.unlock(address=address)
    )
    what = f"user {name}" if name is not None else f"address {address}"
    typer.echo(f"{what}: {'unlocked' if lifted else 'was not locked'}")


def _set_active(name: str, active: bool) -> None:
    from priorauth.service.users import set_active

    if not set_active(_sessions(), name, active):
        fatal(f"no user {name!r}")


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="the user to disable")]) -> None:
    """Stop a user at once: no sign-in, and every open session ends."""
    _set_active(name, False)
    typer.echo(f"disabled {name}; their sessions are ended")


@users_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="the user to enable")]) -> None:
    """Let a disabled user sign in again."""
    _set_active(name, True)
    typer.echo(f"enabled {name}")


@users_app.command("remove-demo")
def remove_demo() -> None:
    """Delete the quickstart's demo accounts (published passwords) from this database."""
    from priorauth.service.users import remove_demo_users

    gone = remove_demo_users(_sessions())
    typer.echo(f"removed demo users: {', '.join(gone)}" if gone else "no demo users")
