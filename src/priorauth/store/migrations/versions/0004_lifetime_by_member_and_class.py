"""lifetime rule by normalised member and therapy class; withdrawal requests and voids

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 18:10:00.000000
"""

import os

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_cases = sa.table(
    "cases",
    sa.column("id", sa.String),
    sa.column("member_id", sa.String),
    sa.column("policy_id", sa.String),
    sa.column("request_bundle", sa.LargeBinary),
    sa.column("lifetime_key", sa.String),
    sa.column("member_key", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("member_key", sa.String(length=400), nullable=True))
        batch_op.add_column(
            sa.Column("withdrawal_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("voided_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("void_reason", sa.Text(), nullable=True))
        batch_op.alter_column(
            "lifetime_key",
            existing_type=sa.String(length=200),
            type_=sa.String(length=600),
            existing_nullable=True,
        )
        batch_op.create_index(batch_op.f("ix_cases_member_key"), ["member_key"], unique=False)
        batch_op.create_index("ix_cases_member_inquiry", ["member_key", "submitter"], unique=False)
    op.create_index(
        "ix_claim_lines_member_norm", "claim_lines", [sa.text("lower(trim(member_id))")]
    )
    _backfill()


def _backfill() -> None:
    """Key the stored cases the way new ones are keyed, so existing approvals still count."""
    from priorauth.errors import InvalidRequest
    from priorauth.pas.members import member_key
    from priorauth.pas.request import read_keys
    from priorauth.policies import builtin

    sensitive = {
        s.strip()
        for s in os.environ.get("PRIORAUTH_CASE_SENSITIVE_ID_SYSTEMS", "").split(",")
        if s.strip()
    }
    default_system = os.environ.get("PRIORAUTH_MEMBER_ID_SYSTEM", "").strip()
    classes = {
        pid: versions[-1].policy.approval.therapy_class or pid
        for pid, versions in builtin().versions.items()
    }
    bind = op.get_bind()
    taken: set[str] = set()
    rows = bind.execute(
        sa.select(
            _cases.c.id,
            _cases.c.member_id,
            _cases.c.policy_id,
            _cases.c.request_bundle,
            _cases.c.lifetime_key,
        ).order_by(_cases.c.id)
    ).all()
    for cid, member_id, policy_id, raw, old_lifetime in rows:
        system, value = None, member_id
        try:
            keys = read_keys(orjson.loads(raw))
            system, value = keys.member_system, keys.member_id or member_id
        except (InvalidRequest, orjson.JSONDecodeError, TypeError, ValueError):
            pass  # keep the stored member id, without a system
        key = member_key(
            system, value, case_sensitive_systems=sensitive, default_system=default_system
        )
        lifetime = None
        if old_lifetime is not None:
            prefix = f"{classes.get(policy_id or '', policy_id or '-')}|{key or 'case:' + cid}"
            slot = 1
            # Two approvals the raw comparison let through take two slots: both still count.
            while f"{prefix}|{slot}" in taken:
                slot += 1
            lifetime = f"{prefix}|{slot}"
            taken.add(lifetime)
        bind.execute(
            _cases.update().where(_cases.c.id == cid).values(member_key=key, lifetime_key=lifetime)
        )


def downgrade() -> None:
    op.drop_index("ix_claim_lines_member_norm", table_name="claim_lines")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_member_inquiry")
        batch_op.drop_index(batch_op.f("ix_cases_member_key"))
        batch_op.alter_column(
            "lifetime_key",
            existing_type=sa.String(length=600),
            type_=sa.String(length=200),
            existing_nullable=True,
        )
        batch_op.drop_column("void_reason")
        batch_op.drop_column("voided_by")
        batch_op.drop_column("voided_at")
        batch_op.drop_column("withdrawal_requested_at")
        batch_op.drop_column("member_key")
