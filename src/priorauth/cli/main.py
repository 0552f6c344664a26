"""Entry point: `priorauth evaluate`, `priorauth policy show`, `priorauth demo`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from priorauth.cli.admin import audit_app, clients_app
from priorauth.cli.exits import Exit, fatal
from priorauth.cli.outbox import outbox_app
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
app.add_typer(outbox_app, name="outbox")
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


PoliciesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--policies",
        help="a folder of policy files to load too (repeatable; also PRIORAUTH_POLICY_PATH)",
    ),
]


def _library(folders: list[Path] | None = None) -> PolicyLibrary:
    from priorauth.errors import PolicyInvalid
    from priorauth.policies import configured

    try:
        return configured(folders or ())
    except PolicyInvalid as e:
        fatal(f"a policy cannot be loaded: {e}", Exit.POLICY_INVALID)


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
    policy_spec: Annotated[
        str | None,
        typer.Option("--policy", help="judge against FILE, ID or ID@VERSION instead of routing"),
    ] = None,
    policies: PoliciesOption = None,
) -> None:
    """Judge one request: every criterion with its evidence, and a recommendation."""
    from priorauth.errors import InvalidClaims, InvalidRequest, NoPolicyInForce, PolicyInvalid
    from priorauth.intake.claims import read_claims
    from priorauth.policies.judging import ClaimsLookup, judge

    if fmt not in ("text", "json"):
        fatal(f"--format must be text or json, not {fmt!r}")
    review = _date(as_of, "--as-of")
    raw = _read(bundle, "bundle")
    lookup: ClaimsLookup | None = None
    if claims is not None:
        try:
            index = read_claims(_read(claims, "claims file").splitlines())
        except InvalidClaims as e:
            fatal(f"{claims.name}: {e}")
        lookup = lambda facts: index.history_for(facts.patient.member_id)  # noqa: E731
    lib = _library(policies)
    forced = None
    if policy_spec is not None:
        from priorauth.policies import load_one

        try:
            forced = load_one(policy_spec, lib)
        except PolicyInvalid as e:
            fatal(str(e), Exit.POLICY_INVALID)
        except NoPolicyInForce as e:
            fatal(str(e), Exit.NO_POLICY)
    try:
        judged = judge(raw, lib, claims=lookup, as_of=review, validate=validate, policy=forced)
    except InvalidRequest as e:
        fatal(f"{bundle.name}: {e}")
    if forced is not None and not forced.covers(judged.facts):
        fatal(f"{forced.policy.id} does not cover the requested service", Exit.NO_POLICY)
    result = judged.to_dict()
    if result is None:
        fatal(
            "no loaded policy covers the requested service for this payer and plan "
            "on its date of service",
            Exit.NO_POLICY,
        )
    if fmt == "json":
        import orjson

        typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        from priorauth.cli.render import render_text

        render_text(result, _console())


@policy_app.command("list")
def policy_list(policies: PoliciesOption = None) -> None:
    """Every loaded policy version: payer, plans, services, effective and retired dates."""
    from rich.console import Console
    from rich.table import Table

    from priorauth.policies import retired_on

    lib = _library(policies)
    t = Table(title="loaded policies")
    for col in ("id", "payer", "version", "effective", "retired", "plans", "services", "file"):
        t.add_column(col)
    for vs in lib.versions.values():
        for i, v in enumerate(vs):
            p = v.policy
            ends = retired_on(v, vs[i + 1] if i + 1 < len(vs) else None)
            t.add_row(
                p.id,
                p.applies_to.payer,
                p.version,
                p.effective.isoformat(),
                ends.isoformat() if ends else "",
                ", ".join(p.applies_to.plans) or "all",
                _services(v.service_codes()),
                Path(lib.sources.get((p.id, p.version), "")).name,
            )
    Console(highlight=False, width=200).print(t)


@policy_app.command("diff")
def policy_diff(
    old: Annotated[str, typer.Argument(help="ID@VERSION (or a policy FILE)")],
    new: Annotated[str, typer.Argument(help="ID@VERSION (or a policy FILE)")],
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    policies: PoliciesOption = None,
) -> None:
    """What changed between two versions, criterion by criterion (lined up by key)."""
    import orjson

    from priorauth.errors import NoPolicyInForce, PolicyInvalid
    from priorauth.policies import load_one
    from priorauth.policies.diff import diff_policies

    if fmt not in ("text", "json"):
        fatal(f"--format must be text or json, not {fmt!r}")
    lib = _library(policies)
    try:
        a, b = load_one(old, lib), load_one(new, lib)
    except PolicyInvalid as e:
        fatal(str(e), Exit.POLICY_INVALID)
    except NoPolicyInForce as e:
        fatal(str(e), Exit.NO_POLICY)
    result = diff_policies(a.policy, b.policy)
    if fmt == "json":
        typer.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(result.to_text())


@policy_app.command("check")
def policy_check(
    files: Annotated[list[Path], typer.Argument(help="policy files (or plans/ files) to lint")],
) -> None:
    """Every problem of the files at once, as FILE:LINE: CRITERION: MESSAGE; exit 1 on an error."""
    from priorauth.policies.lint import check_files

    found = check_files(files)
    for p in found:
        typer.echo(str(p))
    problems = [p for p in found if not p.warning]
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {len(files)} file(s)", err=True)
        raise typer.Exit(1)
    warnings = len(found) - len(problems)
    typer.echo(
        f"{len(files)} file(s) checked: no problems"
        + (f", {warnings} warning(s)" if warnings else "")
    )


@policy_app.command("test")
def policy_test(
    folder: Annotated[
        Path | None, typer.Argument(help="a folder of cases (default: the shipped ones)")
    ] = None,
    policies: PoliciesOption = None,
) -> None:
    """Run each case (request, claims, expected outcome) and print a table; exit 1 on a miss."""
    from rich.console import Console
    from rich.table import Table

    from priorauth.policies.cases import packaged_cases, run_cases

    root = folder or packaged_cases()
    if not root.is_dir():
        fatal(f"{str(root)!r} is not a folder of cases")
    results = run_cases(root, _library(policies))
    if not results:
        fatal(f"no cases (request.json + expected.yaml) under {str(root)!r}")
    t = Table(title=f"policy cases under {root}")
    for col in ("policy", "case", "version", "expected", "got", "result"):
        t.add_column(col)
    for r in results:
        verdict = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
        t.add_row(r.policy, r.name, r.version or "-", r.expected, r.got, verdict)
    Console(highlight=False, width=160).print(t)
    for r in results:
        for why in r.failures:
            typer.echo(f"FAIL {r.policy}/{r.name}: {why}")
    failed = sum(not r.passed for r in results)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


def _services(codes: frozenset[str]) -> str:
    named = [
        f"{system} " + " ".join(sorted(c.split(" ", 1)[1] for c in codes if c.startswith(system)))
        for system in ("HCPCS", "CPT")
        if any(c.startswith(f"{system} ") for c in codes)
    ]
    ndcs = sum(1 for c in codes if c.startswith("NDC "))
    return ", ".join(named) + (f" + {ndcs} NDCs" if ndcs else "")


@policy_app.command("show")
def policy_show(
    policy_id: Annotated[
        str | None, typer.Argument(help="a policy id (see `priorauth policy list`)")
    ] = None,
    on: Annotated[str | None, typer.Option(help="the version in force on YYYY-MM-DD")] = None,
    policies: PoliciesOption = None,
) -> None:
    """Print a policy's criteria tree, dosing and approval terms."""
    from priorauth.cli.policy_view import show_policy
    from priorauth.errors import NoPolicyInForce

    lib = _library(policies)
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
