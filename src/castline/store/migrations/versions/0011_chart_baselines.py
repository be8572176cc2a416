"""The baselines the line's live control charts learnt: one per machine and die (the
current set-point regime), so a restarted worker checks with the same limits at once and
people can see what the limits came from.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 21:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chart_baselines",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("die", sa.String(length=64), nullable=False),
        sa.Column("regime", sa.Integer(), nullable=False),
        sa.Column("shots", sa.Integer(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("learnt_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plant", "machine", "die"),
    )


def downgrade() -> None:
    op.drop_table("chart_baselines")
