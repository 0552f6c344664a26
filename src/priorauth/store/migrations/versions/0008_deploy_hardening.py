"""deploy hardening: demo users flagged, server-side web sessions, sign-in throttle, rate buckets

Revision ID: 0008
Revises: 0003
Create Date: 2026-12-01 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The quickstart's published accounts (priorauth.service.users.DEMO_USERS), copied here because a
# migration must not change when the code does.
_DEMO = (("intake", "intake-demo-2026"), ("director", "director-demo-2026"))


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("demo", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "ui_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ui_sessions_user_id", "ui_sessions", ["user_id"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    _flag_existing_demo_users()


def _flag_existing_demo_users() -> None:
    """A database the demo once ran on keeps its demo accounts: flag those whose password is
    still the published one, so `serve` sees them."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = PasswordHasher()
    conn = op.get_bind()
    users = sa.table(
        "users", sa.column("id", sa.Integer), sa.column("username"), sa.column("password_hash")
    )
    for name, password in _DEMO:
        for uid, hashed in conn.execute(
            sa.select(users.c.id, users.c.password_hash).where(users.c.username == name)
        ):
            try:
                hasher.verify(hashed, password)
            except (VerificationError, InvalidHashError):
                continue
            conn.execute(
                sa.text("UPDATE users SET demo = :t WHERE id = :id"), {"t": True, "id": uid}
            )


def downgrade() -> None:
    op.drop_table("rate_buckets")
    op.drop_table("login_throttle")
    op.drop_index("ix_ui_sessions_user_id", table_name="ui_sessions")
    op.drop_table("ui_sessions")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("demo")
