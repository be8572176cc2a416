"""Results of downstream stations (X-ray, leak test, machining, CMM) for parts, kept even
before their part is known.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "downstream_results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("test", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("defect_type", sa.String(length=40), nullable=True),
        sa.Column("tested_at", ts, nullable=False),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("ref", sa.String(length=160), nullable=False),
        sa.Column("data_matrix", sa.String(length=128), nullable=True),
        sa.Column("ref_machine", sa.String(length=64), nullable=True),
        sa.Column("ref_shot_number", sa.BigInteger(), nullable=True),
        sa.Column("ref_cavity", sa.Integer(), nullable=True),
        sa.Column("machine", sa.String(length=64), nullable=True),
        sa.Column("shot_number", sa.BigInteger(), nullable=True),
        sa.Column("cavity", sa.Integer(), nullable=True),
        sa.Column("matched_at", ts, nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_downstream_results")),
        sa.UniqueConstraint(
            "plant", "station", "test", "ref", "tested_at", name=op.f("uq_downstream_results_plant")
        ),
    )
    op.create_index("ix_downstream_part", "downstream_results", ["plant", "machine", "shot_number"])
    op.create_index("ix_downstream_unmatched", "downstream_results", ["plant", "matched_at"])


def downgrade() -> None:
    op.drop_index("ix_downstream_unmatched", table_name="downstream_results")
    op.drop_index("ix_downstream_part", table_name="downstream_results")
    op.drop_table("downstream_results")
