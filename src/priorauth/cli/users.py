"""`priorauth users add|list`: reviewer accounts for the web app."""

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
    from priorauth.ui.users import UserError, create_user

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
    from sqlalchemy import select

    from priorauth.store.models import UserRow
    from priorauth.ui.users import ROLES

    with _sessions()() as s:
        for row in s.scalars(select(UserRow).order_by(UserRow.username)):
            state = "active" if row.active else "inactive"
            label = ROLES.get(row.role, row.role)
            typer.echo(f"{row.username}\t{label}\t{state}\t{row.display_name}")
