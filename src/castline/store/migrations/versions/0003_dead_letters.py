"""Dead letters keep a bounded payload: its first bytes, with the size and SHA-256 of all.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:00:00
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 200  # letters read at a time while filling the new columns


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("payload_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("payload_sha256", sa.String(length=64), nullable=True))
    # Letters written before this revision hold their whole payload: size and hash from it.
    letters = sa.table(
        "dead_letters",
        sa.column("id", sa.BigInteger()),
        sa.column("payload", sa.LargeBinary()),
        sa.column("payload_size", sa.BigInteger()),
        sa.column("payload_sha256", sa.String()),
    )
    bind = op.get_bind()
    last = -1
    while True:
        rows = bind.execute(
            sa.select(letters.c.id, letters.c.payload)
            .where(letters.c.id > last)
            .order_by(letters.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            payload = bytes(row.payload)
            bind.execute(
                letters.update()
                .where(letters.c.id == row.id)
                .values(
                    payload_size=len(payload),
                    payload_sha256=hashlib.sha256(payload).hexdigest(),
                )
            )
        last = rows[-1].id
    with op.batch_alter_table("dead_letters") as batch:
        batch.alter_column("payload_size", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("payload_sha256", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("payload_sha256")
        batch.drop_column("payload_size")
