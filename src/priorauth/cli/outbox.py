"""`priorauth outbox list|deliver`: the subscription notifications waiting, sent or failed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from priorauth.cli.exits import fatal

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from priorauth.settings import Settings

outbox_app = typer.Typer(
    help="Subscription notifications: list them, or deliver the due ones once.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
STATUSES = ("pending", "delivered", "failed", "cancelled")


def _context() -> tuple[Settings, sessionmaker[Session]]:
    from priorauth.settings import Settings
    from priorauth.store.db import SchemaOutOfDate, check_schema, make_engine, session_factory

    try:
        settings = Settings.from_env()
    except ValueError as e:
        fatal(str(e))
    engine = make_engine(settings.database_url)
    try:
        check_schema(engine)
    except SchemaOutOfDate as e:
        fatal(str(e))
    return settings, session_factory(engine)


@outbox_app.command("list")
def outbox_list(
    status: Annotated[
        str | None, typer.Option(help="only this status: pending, delivered, failed, cancelled")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """The newest notifications with their delivery state (ids and errors only, no content)."""
    from priorauth.service.notifier import rows

    if status is not None and status not in STATUSES:
        fatal(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    _, sessions = _context()
    found = rows(sessions, status, None, max(1, limit))
    if as_json:
        for r in found:
            typer.echo(orjson.dumps(r).decode())
        return
    if not found:
        typer.echo("no notifications")
        return
    for r in found:
        error = f"  {r['last_error']}" if r["last_error"] else ""
        case = r["case"] or "-"
        typer.echo(
            f"{r['id']:>6}  {r['status']:<9}  {r['kind']:<18}  attempts {r['attempts']}  "
            f"subscription {r['subscription']}  case {case}{error}"
        )


@outbox_app.command("deliver")
def outbox_deliver() -> None:
    """Send every notification that is due now, once (the server's worker does this itself)."""
    from priorauth.service.notifier import Notifier
    from priorauth.service.outbound import OutboundPolicy

    settings, sessions = _context()
    try:
        policy = OutboundPolicy.from_settings(settings)
    except ValueError as e:
        fatal(str(e))
    notifier = Notifier(sessions, settings, lambda: datetime.now(UTC), lambda: policy)
    try:
        report = notifier.deliver_due()
    finally:
        notifier.close()
    typer.echo(
        f"delivered {report.delivered}, to retry {report.retrying}, "
        f"failed {report.failed}, cancelled {report.cancelled}"
    )
