"""Curve features as shot parameters, each shot's envelope result, and the golden
envelope of each die in versions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Written out, not imported: a migration stays as it was when later code changes.
CURVE_FEATURES = (
    "curve_switchover_mm",
    "curve_fast_velocity_mean_mps",
    "curve_fast_velocity_min_mps",
    "curve_fill_time_ms",
    "curve_pressure_rise_ms",
    "curve_intensification_bar",
    "curve_biscuit_mm",
)


def upgrade() -> None:
    with op.batch_alter_table("shots") as batch:
        for name in CURVE_FEATURES:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch.add_column(sa.Column("envelope_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("envelope_breach", sa.String(length=200), nullable=True))
    op.create_table(
        "die_envelopes",
        sa.Column("die", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("learnt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shots", sa.Integer(), nullable=False),
        sa.Column("rate_hz", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("die", "version", name=op.f("pk_die_envelopes")),
    )


def downgrade() -> None:
    op.drop_table("die_envelopes")
    with op.batch_alter_table("shots") as batch:
        batch.drop_column("envelope_breach")
        batch.drop_column("envelope_version")
        for name in reversed(CURVE_FEATURES):
            batch.drop_column(name)
