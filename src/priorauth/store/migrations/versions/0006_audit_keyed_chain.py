"""audit trail keyed by HMAC; head only moves forward; no TRUNCATE; wider columns

The existing records are RE-KEYED: the migration first checks the old, unkeyed SHA-256
chain and stops, naming the first bad record, if it is broken (so that re-keying never
launders a tampered record); then it recomputes every link as HMAC-SHA256 with the audit
key of the environment it runs in (PRIORAUTH_AUDIT_KEY, else derived from
PRIORAUTH_SECRET_KEY, else the development key). Run `priorauth db upgrade` with the
same settings as the server.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-01 18:00:00
"""

import hashlib
import hmac
from datetime import UTC
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
HEAD_GUARD = "audit_head only moves forward"

# The columns as this migration reads and re-writes them (typed, so that `at` and
# `detail` come back exactly as the application reads them when it hashes).
events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer()),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("actor_kind", sa.String()),
    sa.column("action", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("entity", sa.String()),
    sa.column("source", sa.String()),
    sa.column("detail", sa.JSON()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)
head = sa.table(
    "audit_head", sa.column("id", sa.Integer()), sa.column("last_id", sa.Integer()),
    sa.column("last_hash", sa.String()),
)  # fmt: skip


def _body(row: Any) -> bytes:
    at = row.at.astimezone(UTC) if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    fields = {
        "id": row.id,
        "at": at.isoformat(timespec="microseconds"),
        "actor": row.actor,
        "actor_kind": row.actor_kind,
        "action": row.action,
        "outcome": row.outcome,
        "entity": row.entity,
        "source": row.source,
        "detail": row.detail,
    }
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


def _rekey(conn: sa.Connection) -> None:
    old = new = GENESIS
    n = 0
    rows = conn.execute(sa.select(events).order_by(events.c.id)).all()
    key = _audit_key() if rows else b""  # a fresh database needs no key (and no warning)
    for row in rows:
        n += 1
        body = _body(row)
        if (
            row.id != n
            or row.prev_hash != old
            or hashlib.sha256(old.encode() + body).hexdigest() != row.hash
        ):
            raise RuntimeError(
                f"audit trail is broken at record {n} (run `priorauth audit verify` on the "
                "previous release): not re-keying it; investigate before upgrading"
            )
        link = hmac.new(key, new.encode() + body, hashlib.sha256).hexdigest()
        conn.execute(events.update().where(events.c.id == row.id).values(prev_hash=new, hash=link))
        old, new = row.hash, link
    top = conn.execute(sa.select(head).where(head.c.id == 1)).one_or_none()
    if top is None or top.last_id != n or top.last_hash != old:
        raise RuntimeError("audit trail's head does not match its last record: not re-keying it")
    # The head's own triggers (created below) would refuse this: it does not move forward.
    conn.execute(head.update().where(head.c.id == 1).values(last_hash=new))


def _audit_key() -> bytes:
    from priorauth.keys import audit_key
    from priorauth.settings import Settings

    settings = Settings.from_env()
    return audit_key(settings.audit_key, settings.secret_key)[0]


def upgrade() -> None:
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    if pg:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        _rekey(conn)
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        # Sized for what can arrive (a path, an id): longer values are cut with a marker.
        for column, size in (("action", 60), ("entity", 1000), ("source", 200)):
            op.execute(f"ALTER TABLE audit_events ALTER COLUMN {column} TYPE VARCHAR({size})")
        # TRUNCATE bypasses row triggers: a statement trigger refuses it.
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE FUNCTION audit_head_forward_only() RETURNS trigger AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.last_id > OLD.last_id "
            "THEN RETURN NEW; END IF; "
            f"RAISE EXCEPTION '{HEAD_GUARD}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head "
            "FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward_only()"
        )
    else:
        # SQLite has no TRUNCATE (a DELETE without WHERE fires the DELETE trigger) and does
        # not enforce VARCHAR lengths.
        op.execute("DROP TRIGGER audit_events_no_update")
        _rekey(conn)
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
            f"BEGIN SELECT RAISE(ABORT, '{HEAD_GUARD}'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head "
            "WHEN NEW.id != OLD.id OR NEW.last_id <= OLD.last_id "
            f"BEGIN SELECT RAISE(ABORT, '{HEAD_GUARD}'); END"
        )


def downgrade() -> None:
    # The keyed links stay: an unkeyed chain cannot be restored without weakening it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_head")
        op.execute("DROP FUNCTION IF EXISTS audit_head_forward_only()")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_head_forward_only")
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_delete")
