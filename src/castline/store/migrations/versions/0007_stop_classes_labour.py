"""Stop classes a person gave (or corrected) and logged inspection hours.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stop_classes",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("stop_class", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("classified_by", sa.String(length=80), nullable=False),
        sa.Column("classified_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("plant", "machine", "started_at", name=op.f("pk_stop_classes")),
    )
    op.create_table(
        "labour_log",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("work", sa.String(length=20), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("logged_by", sa.String(length=80), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("plant", "work", "started_at", name=op.f("pk_labour_log")),
    )


def downgrade() -> None:
    op.drop_table("labour_log")
    op.drop_table("stop_classes")
