"""Plant schema: machines, dies, shots, images, verdicts, reviews, models, alarms, users.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 13:36:15.884453
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=True),
        sa.Column("die", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("rule", sa.String(length=80), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("acked_by", sa.String(length=80), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ack_comment", sa.Text(), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index("ix_alarms_dedup", ["dedup_key", "cleared_at"], unique=False)
        batch_op.create_index("ix_alarms_open", ["plant", "cleared_at"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("digest", name=op.f("uq_dead_letters_digest")),
    )
    op.create_table(
        "dies",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("part_name", sa.String(length=200), nullable=False),
        sa.Column("rated_life_shots", sa.BigInteger(), nullable=False),
        sa.Column("shot_counter", sa.BigInteger(), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=True),
        sa.Column("plant", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_dies")),
    )
    op.create_table(
        "images",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("shot_number", sa.BigInteger(), nullable=False),
        sa.Column("view", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blob", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint(
            "plant", "machine", "shot_number", "view", name=op.f("uq_images_plant")
        ),
    )
    op.create_table(
        "machine_states",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("die", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_states")),
        sa.UniqueConstraint("plant", "machine", "at", name=op.f("uq_machine_states_plant")),
    )
    op.create_table(
        "models",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("die", sa.String(length=64), nullable=False),
        sa.Column("view", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("die", "view", "version", name=op.f("uq_models_die")),
    )
    op.create_table(
        "plants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plants")),
    )
    op.create_table(
        "reviews",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("shot_number", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("defect_type", sa.String(length=40), nullable=True),
        sa.Column("reviewer", sa.String(length=80), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("plant", "machine", "shot_number", name=op.f("uq_reviews_plant")),
    )
    op.create_table(
        "shots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("shot_number", sa.BigInteger(), nullable=False),
        sa.Column("die", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_matrix", sa.String(length=128), nullable=True),
        sa.Column("trial", sa.Boolean(), nullable=False),
        sa.Column("melt_temp_c", sa.Float(), nullable=True),
        sa.Column("die_temp_fixed_c", sa.Float(), nullable=True),
        sa.Column("die_temp_moving_c", sa.Float(), nullable=True),
        sa.Column("sleeve_temp_c", sa.Float(), nullable=True),
        sa.Column("coolant_temp_c", sa.Float(), nullable=True),
        sa.Column("slow_shot_velocity_mps", sa.Float(), nullable=True),
        sa.Column("fast_shot_velocity_mps", sa.Float(), nullable=True),
        sa.Column("intensification_pressure_bar", sa.Float(), nullable=True),
        sa.Column("biscuit_thickness_mm", sa.Float(), nullable=True),
        sa.Column("cycle_time_s", sa.Float(), nullable=True),
        sa.Column("vacuum_mbar", sa.Float(), nullable=True),
        sa.Column("spray_time_s", sa.Float(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("curve", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shots")),
        sa.UniqueConstraint("plant", "machine", "shot_number", name=op.f("uq_shots_plant")),
    )
    with op.batch_alter_table("shots", schema=None) as batch_op:
        batch_op.create_index("ix_shots_die_at", ["die", "at"], unique=False)
        batch_op.create_index("ix_shots_machine_at", ["plant", "machine", "at"], unique=False)

    op.create_table(
        "truths",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("shot_number", sa.BigInteger(), nullable=False),
        sa.Column("defective", sa.Boolean(), nullable=False),
        sa.Column("defect_type", sa.String(length=40), nullable=True),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("plant", "machine", "shot_number", name=op.f("pk_truths")),
    )
    op.create_table(
        "users",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("plants", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "verdicts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("shot_number", sa.BigInteger(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(length=80), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("heatmap", sa.String(length=64), nullable=True),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verdicts")),
        sa.UniqueConstraint("plant", "machine", "shot_number", name=op.f("uq_verdicts_plant")),
    )
    with op.batch_alter_table("verdicts", schema=None) as batch_op:
        batch_op.create_index("ix_verdicts_decided", ["plant", "decided_at"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "die_maintenance",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("die", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shot_count", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["die"], ["dies.code"], name=op.f("fk_die_maintenance_die_dies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_die_maintenance")),
        sa.UniqueConstraint("die", "at", "kind", name=op.f("uq_die_maintenance_die")),
    )
    op.create_table(
        "machines",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("clamp_force_t", sa.Float(), nullable=True),
        sa.Column("views", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["plant"], ["plants.id"], name=op.f("fk_machines_plant_plants")),
        sa.PrimaryKeyConstraint("plant", "id", name=op.f("pk_machines")),
    )


def downgrade() -> None:
    op.drop_table("machines")
    op.drop_table("die_maintenance")
    op.drop_table("api_keys")
    with op.batch_alter_table("verdicts", schema=None) as batch_op:
        batch_op.drop_index("ix_verdicts_decided")

    op.drop_table("verdicts")
    op.drop_table("users")
    op.drop_table("truths")
    with op.batch_alter_table("shots", schema=None) as batch_op:
        batch_op.drop_index("ix_shots_machine_at")
        batch_op.drop_index("ix_shots_die_at")

    op.drop_table("shots")
    op.drop_table("reviews")
    op.drop_table("plants")
    op.drop_table("models")
    op.drop_table("machine_states")
    op.drop_table("images")
    op.drop_table("dies")
    op.drop_table("dead_letters")
    op.drop_table("audit_log")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_alarms_open")
        batch_op.drop_index("ix_alarms_dedup")

    op.drop_table("alarms")
