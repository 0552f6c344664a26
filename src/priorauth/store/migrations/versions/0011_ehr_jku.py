"""EHR clients of the CRD hooks: a registered JWKS URL (jku) next to the inline JWKS

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients") as batch_op:
        batch_op.add_column(sa.Column("jku", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_clients") as batch_op:
        batch_op.drop_column("jku")
