"""`priorauth serve`, `priorauth db upgrade` and `priorauth claims import`."""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from priorauth.cli.exits import Exit, fatal

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from priorauth.policies import PolicyLibrary
    from priorauth.settings import Settings

db_app = typer.Typer(help="Manage the case database.", no_args_is_help=True, rich_markup_mode=None)
claims_app = typer.Typer(
    help="Manage the claims history.", no_args_is_help=True, rich_markup_mode=None
)


def _settings() -> Settings:
    from priorauth.settings import Settings

    try:
        return Settings.from_env()
    except ValueError as e:
        fatal(str(e))


def _no_driver(url: str, e: ModuleNotFoundError) -> NoReturn:
    scheme = url.split(":", 1)[0]
    fatal(
        f"the database driver {e.name!r} for {scheme} is not installed; for PostgreSQL "
        "install the postgres extra: pip install 'priorauth[postgres]' (uv sync --extra postgres)"
    )


def open_engine(url: str) -> Engine:
    """The configured database's engine, or one line naming the driver to install."""
    from priorauth.store.db import make_engine

    try:
        return make_engine(url)
    except ModuleNotFoundError as e:
        _no_driver(url, e)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (PRIORAUTH_DATABASE_URL, default SQLite ./priorauth.db)."""
    from sqlalchemy.exc import SQLAlchemyError

    from priorauth.store.db import upgrade

    settings = _settings()
    try:
        upgrade(settings.database_url)
    except ModuleNotFoundError as e:
        _no_driver(settings.database_url, e)
    except SQLAlchemyError as e:
        fatal(f"cannot upgrade the database: {type(e).__name__}: {str(e).splitlines()[0]}")
    typer.echo("database schema is up to date")


@claims_app.command("import")
def claims_import(
    file: Annotated[Path, typer.Argument(help="NDJSON of ExplanationOfBenefit")],
) -> None:
    """Load paid claims into the database; criterion C reads them. Re-importing is harmless."""
    from priorauth.errors import InvalidClaims
    from priorauth.intake.claims import read_claims
    from priorauth.store.claims import import_claims
    from priorauth.store.db import SchemaOutOfDate, check_schema, session_factory

    settings = _settings()
    try:
        raw = file.read_bytes()
    except OSError as e:
        fatal(f"cannot read {str(file)!r}: {e.strerror or e}")
    try:
        index = read_claims(raw.splitlines())
    except InvalidClaims as e:
        fatal(f"{file.name}: {e}")
    engine = open_engine(settings.database_url)
    try:
        check_schema(engine)
    except SchemaOutOfDate as e:
        fatal(str(e), Exit.BAD_INPUT)
    with session_factory(engine)() as s:
        added, lines = import_claims(s, index)
    typer.echo(f"imported {added} new claim lines ({lines} read)")


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run the PAS service (FastAPI + uvicorn) on the configured database."""
    import uvicorn

    from priorauth.store.db import SchemaOutOfDate, check_schema

    settings = _settings()
    engine = open_engine(settings.database_url)
    try:
        check_schema(engine)
    except SchemaOutOfDate as e:
        fatal(f"refusing to start: {e}", Exit.BAD_INPUT)
    finally:
        engine.dispose()
    if not os.environ.get("PRIORAUTH_SECRET_KEY"):
        # Every worker must check the tokens the others issue: share one secret.
        os.environ["PRIORAUTH_SECRET_KEY"] = secrets.token_urlsafe(32)
    uvicorn.run(
        "priorauth.api.factory:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
        log_config=None,  # priorauth.observability configures JSON logs in each worker
    )


def serve_demo(library: PolicyLibrary, host: str, port: int) -> None:
    """Upgrade the configured database, submit the demo requests, and serve."""
    import uvicorn

    from priorauth.api.app import create_app
    from priorauth.demo.command import load_demo
    from priorauth.service.app_service import PriorAuthService
    from priorauth.store.db import make_engine, upgrade
    from priorauth.ui import ensure_demo_users

    # The demo is a development server: authentication is off, and says so.
    settings = dataclasses.replace(_settings(), auth_enabled=False)
    upgrade(settings.database_url)
    service = PriorAuthService(settings, make_engine(settings.database_url), library)
    n = load_demo(service)
    users = ensure_demo_users(service)
    logins = ", ".join(f"{name} / {password} ({role})" for name, password, role in users)
    typer.echo(
        f"{n} demo requests are stored as pended cases ({settings.database_url}).\n"
        f"  reviewer app: http://{host}:{port}/ui  (demo users: {logins})\n"
        f"  open cases:  curl http://{host}:{port}/api/cases\n"
        f"  metadata:    curl http://{host}:{port}/fhir/metadata\n"
        f"  API docs:    http://{host}:{port}/docs"
    )
    uvicorn.run(create_app(service), host=host, port=port, log_level="info", access_log=False)
