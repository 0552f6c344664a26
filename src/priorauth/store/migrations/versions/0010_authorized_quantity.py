"""authorized quantity: a decision records the product, quantity and billing unit, not only a kit

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.alter_column("kit_ndc", new_column_name="product_ndc")
        batch_op.alter_column("kit_vials", new_column_name="product_vials")
        batch_op.add_column(sa.Column("quantity", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("unit", sa.String(length=20), nullable=True))
    # Every decision before this revision authorized one kit.
    cases = sa.table(
        "cases",
        sa.column("product_ndc", sa.String),
        sa.column("quantity", sa.Float),
        sa.column("unit", sa.String),
    )
    op.get_bind().execute(
        cases.update().where(cases.c.product_ndc.is_not(None)).values(quantity=1.0, unit="kit")
    )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("unit")
        batch_op.drop_column("quantity")
        batch_op.alter_column("product_vials", new_column_name="kit_vials")
        batch_op.alter_column("product_ndc", new_column_name="kit_ndc")
