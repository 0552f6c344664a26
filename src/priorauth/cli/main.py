"""Entry point: `priorauth evaluate`, `priorauth policy show`, `priorauth demo`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from priorauth.cli.admin import audit_app, clients_app
from priorauth.cli.exits import Exit, fatal
from priorauth.cli.server import claims_app, db_app, serve
from priorauth.cli.users import users_app

if TYPE_CHECKING:
    from rich.console import Console

    from priorauth.policies import PolicyLibrary

# Start-up time is part of the interface (`priorauth evaluate` is run once per file by
# scripts): this module and the sub-apps import nothing heavy at the top. Each command
# imports what it needs (SQLAlchemy, FastAPI, Rich, fhir.resources) inside its function;
# tests/cli/test_cold_start.py keeps it so.

app = typer.Typer(
    name="priorauth",
    help="Prior authorization engine: judge a PAS request against a coverage policy.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help and usage errors: Rich's formatter costs `priorauth --help` ~70 ms of imports.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(
    help="Inspect the loaded coverage policies.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")
app.add_typer(claims_app, name="claims")
app.add_typer(clients_app, name="clients")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.command()(serve)


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fatal(f"{option} must be a date YYYY-MM-DD, not {value!r}")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        fatal(f"cannot read {what} {str(path)!r}: {e.strerror or e}")


def _library() -> PolicyLibrary:
    from priorauth import PolicyInvalid, load_policies

    try:
        return load_policies()
    except PolicyInvalid as e:
        fatal(f"a shipped policy is invalid: {e}", Exit.POLICY_INVALID)


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Argument(help="PAS request Bundle (FHIR R4 JSON)")],
    claims: Annotated[
        Path | None, typer.Option(help="claims history: NDJSON of ExplanationOfBenefit")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="review date YYYY-MM-DD (default Claim.created)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    validate: Annotated[
        bool,
        typer.Option(help="also validate the Bundle against the FHIR R4B models (slower)"),
    ] = False,
) -> None:
    """Judge one request: every criterion with its evidence, and a recommendation."""
    import priorauth

    if fmt not in ("text", "json"):
        fatal(f"--format must be text or json, not {fmt!r}")
    review = _date(as_of, "--as-of")
    raw = _read(bundle, "bundle")
    history = None if claims is None else _read(claims, "claims file")
    lib = _library()
    try:
        determination = priorauth.evaluate(
            raw, claims=history, as_of=review, policies=lib, validate=validate
        )
    except priorauth.InvalidClaims as e:
        fatal(f"{claims.name if claims else 'claims'}: {e}")
    except priorauth.InvalidRequest as e:
        fatal(f"{bundle.name}: {e}")
    except priorauth.NoPolicyInForce as e:
        fatal(str(e), Exit.NO_POLICY)
    result = priorauth.to_dict(determination, lib)
    if fmt == "json":
        import orjson

        typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        from priorauth.cli.render import render_text

        render_text(result, _console())


@policy_app.command("show")
def policy_show(
    policy_id: Annotated[str | None, typer.Argument(help="e.g. cigna-ip0535")] = None,
    on: Annotated[str | None, typer.Option(help="the version in force on YYYY-MM-DD")] = None,
) -> None:
    """Print a policy's criteria tree, kits and approval terms."""
    from priorauth.cli.policy_view import show_policy
    from priorauth.errors import NoPolicyInForce

    lib = _library()
    when = _date(on, "--on")
    ids = [policy_id] if policy_id else list(lib.versions)
    console = _console()
    for pid in ids:
        try:
            compiled = lib.in_force(pid, when) if when else lib.versions[pid][-1]
        except (KeyError, NoPolicyInForce) as e:
            known = ", ".join(lib.versions)
            fatal(
                f"{e if isinstance(e, NoPolicyInForce) else f'no policy {pid!r}'}; loaded: {known}",
                Exit.NO_POLICY,
            )
        show_policy(compiled.policy, console)


@app.command()
def demo(
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="then start the service with them loaded")
    ] = True,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """The quickstart's main job: judge demo requests, then serve them on SQLite."""
    from priorauth.demo.command import run_demo

    if fmt not in ("text", "json"):
        fatal(f"--format must be text or json, not {fmt!r}")
    lib = _library()
    run_demo(lib, fmt)
    if serve_after:
        from priorauth.cli.server import serve_demo

        serve_demo(lib, host, port)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
