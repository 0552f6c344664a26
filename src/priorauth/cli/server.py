"""`priorauth serve`, `priorauth db upgrade` and `priorauth claims import`."""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

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
    from priorauth.service.preflight import REFUSE, preflight
    from priorauth.store.db import SchemaOutOfDate, check_schema

    settings = _settings()
    engine = open_engine(settings.database_url)
    try:
        check_schema(engine)
        findings = preflight(settings, engine, workers)
    except SchemaOutOfDate as e:
        fatal(f"refusing to start: {e}", Exit.BAD_INPUT)
    finally:
        engine.dispose()
    # The production checklist (docs/deploy.md): one line per check, ok / warn / refuse.
    for f in findings:
        if f.level != REFUSE:
            sys.stderr.write(f"priorauth: preflight {f.line()}\n")
    refused = [f for f in findings if f.level == REFUSE]
    if refused:
        for f in refused:
            sys.stderr.write(f"priorauth: error: refusing to start: {f.check}: {f.message}\n")
        raise SystemExit(int(Exit.BAD_INPUT))
    if not settings.secret_key:
        # The audit chain's key must outlive this process (or `audit verify` fails after a
        # restart): not derived from a throwaway secret, the development key instead.
        from priorauth.keys import DEV_AUDIT_KEY

        os.environ.setdefault("PRIORAUTH_AUDIT_KEY", DEV_AUDIT_KEY)
        if workers > 1:
            # Development mode only (preflight refuses this with authentication on): the
            # workers still need one key between them for the web sessions.
            os.environ["PRIORAUTH_SECRET_KEY"] = secrets.token_urlsafe(48)
    run_uvicorn(
        "priorauth.api.factory:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
        log_config=None,  # priorauth.observability configures JSON logs in each worker
        **connection_limits(settings),
    )


def run_uvicorn(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """uvicorn.run, except that several workers each listen on a socket of their own.

    With one shared listening socket, the worker that wakes first accepts every
    connection waiting (uvloop accepts in a loop): ten keep-alive clients that connect
    together land nine on one worker, which then does the work of two cores alone
    while the other idles. With SO_REUSEPORT (Linux) the kernel spreads new
    connections over the workers' sockets instead.
    """
    import uvicorn

    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # Bound here, never listened on: it holds the address (a clash fails now, in one
        # line) and names it for the workers, each of which binds its own (below).
        held = _reuse_port_socket(family, (host, port), _WorkerSocket)
    except OSError as e:
        fatal(f"cannot listen on {host}:{port}: {e.strerror or e}")
    try:
        Multiprocess(config, sockets=[held]).run()
    except KeyboardInterrupt:
        pass
    finally:
        held.close()


def _reuse_port_socket(
    family: int, address: tuple[str, int], kind: type[socket.socket] = socket.socket
) -> socket.socket:
    sock = kind(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


class _WorkerSocket(socket.socket):
    """The parent's socket; sent to a worker process, it arrives as a new socket bound
    to the same address (SO_REUSEPORT), which that worker alone listens on."""

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        return (_reuse_port_socket, (self.family, self.getsockname()[:2]))


def connection_limits(settings: Settings) -> dict[str, Any]:
    """uvicorn's options so that no connection is held for ever (priorauth.api.protocol)."""
    from priorauth.api.protocol import TimedH11Protocol

    return {
        "http": TimedH11Protocol,
        "timeout_keep_alive": settings.timeout_keep_alive,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "limit_concurrency": settings.limit_concurrency,
    }


def serve_demo(library: PolicyLibrary, host: str, port: int) -> None:
    """Upgrade the configured database, submit the demo requests, and serve."""
    import uvicorn

    from priorauth.api.app import create_app
    from priorauth.demo.command import load_demo
    from priorauth.service.app_service import PriorAuthService
    from priorauth.service.users import ensure_demo_users
    from priorauth.store.db import make_engine, upgrade

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
    uvicorn.run(
        create_app(service),
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        **connection_limits(settings),
    )
