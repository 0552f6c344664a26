"""client roles and the organization of coverage assertions

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ROLE_CHECK = (
    "(role = 'provider' AND organization IS NOT NULL) "
    "OR (role = 'payer-system' AND organization IS NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=20), nullable=True))
    # A client registered without an organization acted for every organization: it keeps
    # doing so, now under its explicit name. One with an organization is a provider's system.
    op.execute(
        "UPDATE api_clients SET role = CASE WHEN organization IS NULL "
        "THEN 'payer-system' ELSE 'provider' END"
    )
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.alter_column("role", existing_type=sa.String(length=20), nullable=False)
        batch_op.create_check_constraint("ck_api_clients_role", ROLE_CHECK)
    # Assertions made before this revision have no organization: only a payer-side caller
    # (no organization of its own) can look them up.
    with op.batch_alter_table("coverage_assertions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organization", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("coverage_assertions", schema=None) as batch_op:
        batch_op.drop_column("organization")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_constraint("ck_api_clients_role", type_="check")
        batch_op.drop_column("role")
