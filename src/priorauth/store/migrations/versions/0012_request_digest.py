"""request digest: a resubmission under a used Claim.identifier repeats it only if the same

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
# The CRD helper's 0011 may land first: then this revises 0011 (the lead sets it on merge).
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("request_digest", sa.String(length=64), nullable=True))
    # A subscription's channel.payload (its notifications' Content-Type).
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.add_column(sa.Column("payload_type", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.drop_column("payload_type")
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("request_digest")
