"""`priorauth clients add|disable` and `priorauth audit verify|head|export`."""

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

    from priorauth.store.audit import AuditLog

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
    name: Annotated[str, typer.Argument(help="the client id to register (an EHR: its JWT `iss`)")],
    jwks: Annotated[Path | None, typer.Option(help="the client's public JWKS (JSON)")] = None,
    scopes: Annotated[
        list[str] | None,
        typer.Option("--scopes", help="allowed scopes (repeatable; an EHR: the CDS scope)"),
    ] = None,
    org: Annotated[
        str | None,
        typer.Option(help="a provider system: its organization's NPI; it acts for that one only"),
    ] = None,
    payer_system: Annotated[
        bool,
        typer.Option(
            "--payer-system",
            help="the payer's own system: it acts for, and sees, every organization",
        ),
    ] = False,
    ehr: Annotated[
        bool,
        typer.Option(
            "--ehr",
            help="an EHR calling the CRD hooks with a JWT it signs per call (CDS Hooks 2.0)",
        ),
    ] = False,
    jku: Annotated[
        str | None,
        typer.Option(
            help="an EHR's JWKS URL: the only jku its JWTs may name, fetched through the "
            "outbound address policy (instead of, or with, --jwks)"
        ),
    ] = None,
) -> None:
    """Register a backend client that authenticates with a signed JWT (RS384 or ES384).

    Give exactly one of --org (a provider organization's system) or --payer-system.
    An EHR (--ehr) is registered under its JWT `iss`, with --jwks or --jku.
    """
    from priorauth.auth import scopes as sc
    from priorauth.store.clients import register_client
    from priorauth.store.db import session_factory

    # Checked before anything is read: a client that acts for everyone is never the default.
    if payer_system and org is not None:
        fatal("give --org NPI or --payer-system, not both")
    if not payer_system and not (org or "").strip():
        fatal(
            "say whose system this is: --org NPI (a provider organization's; it sees that "
            "organization only) or --payer-system (the payer's own; it sees every organization)"
        )
    if jku is not None and not ehr:
        fatal("--jku is for an EHR's hook JWTs: give --ehr too")
    if jwks is None and jku is None:
        fatal("give the client's public keys: --jwks FILE (or, for an EHR, --jku URL)")
    keys: dict[str, object] = {}
    if jwks is not None:
        try:
            keys = json.loads(jwks.read_text())
        except OSError as e:
            fatal(f"cannot read {str(jwks)!r}: {e.strerror or e}")
        except json.JSONDecodeError as e:
            fatal(f"{jwks.name} is not JSON: {e}")
        if not isinstance(keys, dict):
            fatal(f"{jwks.name} is not a JWKS (a JSON object with keys)")
    wanted = [s for part in scopes or () for s in part.split()]
    if ehr and not wanted:
        wanted = [sc.CDS]
    if not wanted:
        fatal("give the client's scopes: --scopes SCOPE (repeatable)")
    unknown = [s for s in wanted if s not in sc.ALL]
    if unknown:
        fatal(f"unknown scope(s): {', '.join(unknown)}; known: {' '.join(sc.ALL)}")
    with session_factory(_engine())() as s:
        try:
            row = register_client(
                s,
                name,
                name,
                keys,
                wanted,
                org,
                datetime.now(UTC),
                payer_system=payer_system,
                jku=jku,
            )
        except ValueError as e:
            fatal(str(e))
        except Exception as e:  # an unusable key raises the JWT library's own errors
            fatal(f"the JWKS cannot be used: {type(e).__name__}: {e}")
    typer.echo(f"registered client {name} with scopes: {' '.join(wanted)}")
    for line in _what_it_sees(row.role, row.organization, wanted):
        typer.echo(f"  {line}")
    if ehr:
        where = f"the JWKS at {jku}" if jku else "the registered JWKS"
        typer.echo(f"  EHR: its hook JWTs need iss={name} and a kid from {where}")


def _what_it_sees(role: str, org: str | None, scopes: list[str]) -> list[str]:
    """What a client will be able to do and see, said plainly at registration."""
    from priorauth.auth import scopes as sc

    if role == sc.PAYER_SYSTEM:
        lines = ["role: payer system - it acts for and sees EVERY organization's requests"]
    else:
        lines = [
            f"role: provider system of organization {org} - it sees that organization's "
            "requests only; the case API is closed to it"
        ]
    lines += [f"it may {sc.OPENS[x]}" for x in dict.fromkeys(scopes)]
    return lines


def _audit_log() -> tuple[AuditLog, str]:
    """The audit log of the configured database, keyed as the server keys it."""
    from priorauth.keys import audit_key
    from priorauth.settings import Settings
    from priorauth.store.audit import AuditLog

    engine = _engine()  # refuses a bad environment with a one-line error
    settings = Settings.from_env()
    key, origin = audit_key(settings.audit_key, settings.secret_key)
    return AuditLog(engine, key), origin


@clients_app.command("disable")
def clients_disable(
    client_id: Annotated[str, typer.Argument(help="the client id to disable")],
) -> None:
    """Stop a client at once: no new token, and the tokens it holds stop working."""
    from priorauth.store.clients import disable_client
    from priorauth.store.db import session_factory

    with session_factory(_engine())() as s:
        if not disable_client(s, client_id):
            fatal(f"no client {client_id!r}")
    typer.echo(f"disabled client {client_id}; its tokens no longer work")


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            help="a head kept from `priorauth audit head` (SEQ:HASH): fail unless the chain "
            "still holds it at its place",
        ),
    ] = None,
) -> None:
    """Check the HMAC chain; exit 1 and name the first problem when it is broken."""
    log, origin = _audit_log()
    try:
        verdict = log.verify(expect_head)
    except ValueError as e:
        fatal(f"--expect-head: {e}")
    if not verdict.intact:
        typer.echo(
            f"audit trail BROKEN after {verdict.checked} good records: {verdict.problem} "
            f"(key: {origin})",
            err=True,
        )
        raise SystemExit(1)
    anchored = " and holds the expected head" if expect_head else ""
    typer.echo(f"audit trail intact{anchored}: {verdict.checked} records (key: {origin})")


@audit_app.command("head")
def audit_head() -> None:
    """Print the verified chain's head as SEQ:HASH, to keep somewhere the database is not."""
    log, origin = _audit_log()
    verdict = log.verify()
    if not verdict.intact:
        typer.echo(f"audit trail BROKEN: {verdict.problem} (key: {origin})", err=True)
        raise SystemExit(1)
    typer.echo(verdict.head)


@audit_app.command("export")
def audit_export(
    out: Annotated[Path | None, typer.Option(help="write NDJSON here (default stdout)")] = None,
) -> None:
    """Export every record as a FHIR AuditEvent, one per line."""
    from priorauth.store.audit import audit_event

    log, _ = _audit_log()
    lines = b"".join(orjson.dumps(audit_event(r)) + b"\n" for r in log.rows())
    if out is None:
        typer.echo(lines.decode(), nl=False)
    else:
        out.write_bytes(lines)
