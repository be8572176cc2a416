"""Shot curves: one row per shot with a curve, its samples packed (domain/curve.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shot_curves",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("shot_number", sa.BigInteger(), nullable=False),
        sa.Column("rate_hz", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("plant", "machine", "shot_number", name=op.f("pk_shot_curves")),
    )


def downgrade() -> None:
    op.drop_table("shot_curves")
