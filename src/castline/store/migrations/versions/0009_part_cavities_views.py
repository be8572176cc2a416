"""Part identity: a part is (plant, machine, shot number, cavity); each view's photo keeps
its own verdict, score and heat map; marks of further cavities; shots found by their mark.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PART = ("plant", "machine", "shot_number")


def _cavity(primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "cavity", sa.Integer(), nullable=False, server_default="1", primary_key=primary_key
    )


def upgrade() -> None:
    # Batch mode: SQLite changes a table's unique key only by copying the table.
    with op.batch_alter_table("verdicts") as batch:
        batch.add_column(_cavity())
        batch.drop_constraint("uq_verdicts_plant", type_="unique")
        batch.create_unique_constraint("uq_verdicts_plant", [*PART, "cavity"])
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(_cavity())
        batch.drop_constraint("uq_reviews_plant", type_="unique")
        batch.create_unique_constraint("uq_reviews_plant", [*PART, "cavity"])
    with op.batch_alter_table("images") as batch:
        batch.add_column(_cavity())
        batch.add_column(sa.Column("verdict", sa.String(length=16)))
        batch.add_column(sa.Column("score", sa.Float()))
        batch.add_column(sa.Column("heatmap", sa.String(length=64)))
        batch.drop_constraint("uq_images_plant", type_="unique")
        batch.create_unique_constraint("uq_images_plant", [*PART, "cavity", "view"])
    with op.batch_alter_table("truths") as batch:
        batch.add_column(_cavity())
        batch.drop_constraint("pk_truths", type_="primary")
        batch.create_primary_key("pk_truths", [*PART, "cavity"])
    op.create_table(
        "part_marks",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("shot_number", sa.BigInteger(), nullable=False),
        sa.Column("cavity", sa.Integer(), nullable=False),
        sa.Column("data_matrix", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint(*PART, "cavity", name=op.f("pk_part_marks")),
    )
    op.create_index("ix_part_marks_data_matrix", "part_marks", ["data_matrix"])
    op.create_index("ix_shots_data_matrix", "shots", ["data_matrix"])


def downgrade() -> None:
    op.drop_index("ix_shots_data_matrix", table_name="shots")
    op.drop_index("ix_part_marks_data_matrix", table_name="part_marks")
    op.drop_table("part_marks")
    for table, extra in (("verdicts", ()), ("reviews", ()), ("images", ("view",))):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_plant", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_plant", [*PART, *extra])
            batch.drop_column("cavity")
    with op.batch_alter_table("images") as batch:
        for column in ("verdict", "score", "heatmap"):
            batch.drop_column(column)
    with op.batch_alter_table("truths") as batch:
        batch.drop_constraint("pk_truths", type_="primary")
        batch.create_primary_key("pk_truths", list(PART))
        batch.drop_column("cavity")
