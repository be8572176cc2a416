"""The cycle times of each stored hour's production shots (`shot_hours.cycles`), so the
KPIs' suggested planned cycle (a median of the period's shots) reads no shots either.
Hours made before this keep NULL there: the KPIs read those hours' shots for it until
the hours are made again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shot_hours", sa.Column("cycles", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("shot_hours", "cycles")
