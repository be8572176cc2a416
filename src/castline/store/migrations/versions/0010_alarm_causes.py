"""Alarms acknowledged with a named cause, and at most one open alarm per key.

The line raises alarms live, from several workers at once: the partial unique index
makes "one open alarm per plant, machine, die, chart and kind" a rule of the database,
not a hope of each writer. Open duplicates left by older versions are closed first.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OPEN = sa.text("cleared_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("cause_category", sa.String(length=40)))
    # Keep the newest open alarm of a key open; older open duplicates are closed.
    op.execute(
        "UPDATE alarms SET cleared_at = last_seen_at WHERE cleared_at IS NULL AND id NOT IN "
        "(SELECT max(id) FROM alarms WHERE cleared_at IS NULL GROUP BY dedup_key)"
    )
    op.create_index(
        "ux_alarms_open_key",
        "alarms",
        ["dedup_key"],
        unique=True,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ux_alarms_open_key", table_name="alarms")
    with op.batch_alter_table("alarms") as batch:
        batch.drop_column("cause_category")
