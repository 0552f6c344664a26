"""case summary columns: who and what a request is about, so the case lists never decode bundles

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:30:00
"""

from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ("member_name", "member_birth_date", "provider_name", "prescriber_name", "service_name")
WIDTH = 200


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=WIDTH), nullable=True))
    _fill()


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        for name in COLUMNS:
            batch_op.drop_column(name)


def _fill() -> None:
    """Read each stored request once, here, instead of on every listing of the queue."""
    conn = op.get_bind()
    cases = sa.table("cases", sa.column("id", sa.String), sa.column("request_bundle"))
    columns = {name: sa.column(name, sa.String) for name in COLUMNS}
    target = sa.table("cases", sa.column("id", sa.String), *columns.values())
    last = ""
    while True:  # a page of bundles at a time: a large table never sits in memory whole
        rows = conn.execute(
            sa.select(cases.c.id, cases.c.request_bundle)
            .where(cases.c.id > last)
            .order_by(cases.c.id)
            .limit(500)
        ).all()
        if not rows:
            return
        for case_id, raw in rows:
            words = _summary(bytes(raw) if raw is not None else b"")
            if any(words.values()):
                conn.execute(sa.update(target).where(target.c.id == case_id).values(**words))
        last = rows[-1][0]


# Copied from priorauth.intake.summary (as of this revision): a migration must not change
# when the code does.


def _summary(raw: bytes) -> dict[str, str | None]:
    try:
        bundle = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return dict.fromkeys(COLUMNS)
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    first: dict[str, dict[str, Any]] = {}
    org: dict[str, Any] = {}
    for e in entries if isinstance(entries, list) else ():
        r = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(r, dict) or not isinstance(r.get("resourceType"), str):
            continue
        first.setdefault(r["resourceType"], r)
        if r["resourceType"] == "Organization" and not org and r.get("identifier"):
            org = r
    patient = first.get("Patient", {})
    concept = first.get("MedicationRequest", {}).get("medicationCodeableConcept")
    concept = concept if isinstance(concept, dict) else {}
    codings = concept.get("coding")
    service = _text(concept.get("text")) or next(
        (
            c["display"]
            for c in (codings if isinstance(codings, list) else ())
            if isinstance(c, dict) and _text(c.get("display"))
        ),
        None,
    )
    found = (
        _name(patient),
        _text(patient.get("birthDate")),
        _text(org.get("name")),
        _name(first.get("Practitioner", {})),
        service,
    )
    return {k: (v[:WIDTH] if v else None) for k, v in zip(COLUMNS, found, strict=True)}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _name(resource: dict[str, Any]) -> str | None:
    names = resource.get("name")
    for n in names if isinstance(names, list) else ():
        if isinstance(n, str):
            return n
        if not isinstance(n, dict):
            continue
        if _text(n.get("text")):
            return str(n["text"])
        given = n.get("given")
        parts = [g for g in (given if isinstance(given, list) else ()) if _text(g)]
        if _text(n.get("family")):
            parts.append(n["family"])
        if parts:
            return " ".join(parts)
    return None
