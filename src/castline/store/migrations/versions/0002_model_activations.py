"""Model activation history, so a rollback returns to the version active before.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 17:40:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    activations = op.create_table(
        "model_activations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("die", sa.String(length=64), nullable=False),
        sa.Column("view", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_activations")),
    )
    op.create_index("ix_model_activations_die_view", "model_activations", ["die", "view"])
    # The versions active now start the history (what was active before them is unknown).
    models = sa.table(
        "models", sa.column("die"), sa.column("view"), sa.column("version"), sa.column("active")
    )
    rows = op.get_bind().execute(
        sa.select(models.c.die, models.c.view, models.c.version).where(models.c.active)
    )
    now = datetime.now(UTC)
    op.bulk_insert(activations, [dict(r._mapping, activated_at=now) for r in rows])


def downgrade() -> None:
    op.drop_index("ix_model_activations_die_view", table_name="model_activations")
    op.drop_table("model_activations")
