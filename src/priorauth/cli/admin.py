"""`priorauth clients add` and `priorauth audit verify|export`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from priorauth.cli.exits import fatal

if TYPE_CHECKING:
    from sqlalchemy import Engine

clients_app = typer.Typer(
    help="Register API clients (SMART Backend Services).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
audit_app = typer.Typer(
    help="Check and export the audit trail.", no_args_is_help=True, rich_markup_mode=None
)


def _engine() -> Engine:
    from priorauth.cli.server import open_engine
    from priorauth.settings import Settings
    from priorauth.store.db import SchemaOutOfDate, check_schema

    try:
        settings = Settings.from_env()
    except ValueError as e:
        fatal(str(e))
    engine = open_engine(settings.database_url)
    try:
        check_schema(engine)
    except SchemaOutOfDate as e:
        fatal(str(e))
    return engine


@clients_app.command("add")
def clients_add(
    name: Annotated[str, typer.Argument(help="the client id to register")],
    jwks: Annotated[Path, typer.Option(help="the client's public JWKS (JSON)")],
    scopes: Annotated[list[str], typer.Option("--scopes", help="allowed scopes (repeatable)")],
    org: Annotated[
        str | None,
        typer.Option(help="its organization's NPI: it sees that organization's cases only"),
    ] = None,
) -> None:
    """Register a backend client that authenticates with a signed JWT (RS384 or ES384)."""
    from priorauth.auth import scopes as sc
    from priorauth.auth.tokens import register_client
    from priorauth.store.db import session_factory

    try:
        keys = json.loads(jwks.read_text())
    except OSError as e:
        fatal(f"cannot read {str(jwks)!r}: {e.strerror or e}")
    except json.JSONDecodeError as e:
        fatal(f"{jwks.name} is not JSON: {e}")
    wanted = [s for part in scopes for s in part.split()]
    unknown = [s for s in wanted if s not in sc.ALL]
    if unknown:
        fatal(f"unknown scope(s): {', '.join(unknown)}; known: {' '.join(sc.ALL)}")
    with session_factory(_engine())() as s:
        try:
            register_client(s, name, name, keys, wanted, org, datetime.now(UTC))
        except ValueError as e:
            fatal(str(e))
        except Exception as e:  # an unusable key raises the JWT library's own errors
            fatal(f"the JWKS cannot be used: {type(e).__name__}: {e}")
    typer.echo(f"registered client {name} with scopes: {' '.join(wanted)}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the hash chain; exit 1 and name the first bad record when it is broken."""
    from priorauth.store.audit import AuditLog

    ok, checked, problem = AuditLog(_engine()).verify()
    if not ok:
        typer.echo(f"audit trail BROKEN after {checked} good records: {problem}", err=True)
        raise SystemExit(1)
    typer.echo(f"audit trail intact: {checked} records")


@audit_app.command("export")
def audit_export(
    out: Annotated[Path | None, typer.Option(help="write NDJSON here (default stdout)")] = None,
) -> None:
    """Export every record as a FHIR AuditEvent, one per line."""
    from priorauth.store.audit import AuditLog, audit_event

    lines = b"".join(orjson.dumps(audit_event(r)) + b"\n" for r in AuditLog(_engine()).rows())
    if out is None:
        typer.echo(lines.decode(), nl=False)
    else:
        out.write_bytes(lines)
