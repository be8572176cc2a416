"""The KPIs of a month without reading its shots: per machine, hour and die, how the
castings cast in that hour were decided (`shot_hours`), and how far the roll-up has gone
(`rollup_marks`). Filled by the line's hourly duty (`castline.analytics.hourly`); an
empty table only means the KPIs read the shots as before.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

COUNTS = ("castings", "good", "scrap", "first_good", "escapes", "trials")


def upgrade() -> None:
    op.create_table(
        "shot_hours",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("die", sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint("plant", "machine", "hour", "die"),
    )
    op.create_index("ix_shot_hours_plant_hour", "shot_hours", ["plant", "hour"])
    op.create_table(
        "rollup_marks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("rollup_marks")
    op.drop_index("ix_shot_hours_plant_hour", table_name="shot_hours")
    op.drop_table("shot_hours")
