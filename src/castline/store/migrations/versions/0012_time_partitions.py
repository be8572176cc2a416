"""History that stays fast: on PostgreSQL, `shots` and `machine_states` become tables
partitioned by range of `at` (months), with a DEFAULT partition for any other time.
Existing rows are copied over, ids and their sequences kept. SQLite is left as it is.

A unique key of a partitioned table must hold the partition key, so the shots' key
becomes (plant, machine, shot_number, at): a redelivered message (same time) is still
one row; a trigger keeps a second record of the same shot number at another time out,
as the old key did (`castline_shot_once`, with the table `shot_keys`).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 23:30:00
"""

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

from castline.store.partitions import AHEAD_MONTHS, add_months, create_partition, period_start

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

MOST_MONTHS = 240  # existing history spread wider than this keeps its outliers in DEFAULT

# (table, unique key, indexes {name: columns}) as they are, named as tables.py names them
SHOTS: tuple[str, str, str, dict[str, str]] = (
    "shots",
    "uq_shots_plant",
    "plant, machine, shot_number",
    {
        "ix_shots_machine_at": "plant, machine, at",
        "ix_shots_die_at": "die, at",
        "ix_shots_data_matrix": "data_matrix",
    },
)
# The part lists' order is (at, shot_number), newest first: indexes in that order let a
# list of the newest read a few rows of each partition, not sort a plant's year. New in
# 0012 on both databases: a plant's newest shots, and a machine's (which replaces the
# index by (plant, machine, at); `_partition` makes it with these columns).
PLANT_AT = ("ix_shots_plant_at", "plant, at, shot_number")
MACHINE_AT = ("ix_shots_machine_at", "plant, machine, at, shot_number")
STATES: tuple[str, str, str, dict[str, str]] = (
    "machine_states",
    "uq_machine_states_plant",
    "plant, machine, at",
    {},
)

# One record per shot number, whatever its time: the partitioned key holds `at`, so the
# shot numbers are also kept in a plain table whose key has no time. A look-up in the
# partitioned table from a row trigger would start a scan of every partition per row
# (measured: ~20x slower writes); one unique insert here costs about one index entry.
KEYS = """
CREATE TABLE shot_keys (
    plant VARCHAR(64) NOT NULL, machine VARCHAR(64) NOT NULL, shot_number BIGINT NOT NULL,
    CONSTRAINT pk_shot_keys PRIMARY KEY (plant, machine, shot_number)
)
"""
ONCE = """
CREATE FUNCTION castline_shot_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO shot_keys VALUES (NEW.plant, NEW.machine, NEW.shot_number)
        ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;  -- this shot number is recorded already: the first record stays
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(PLANT_AT[0], "shots", PLANT_AT[1].split(", "))
        op.drop_index(MACHINE_AT[0], table_name="shots")
        op.create_index(MACHINE_AT[0], "shots", MACHINE_AT[1].split(", "))
        return
    for table, unique, key, indexes in (SHOTS, STATES):
        _partition(table, unique, key, indexes)
    op.execute(f"CREATE INDEX {PLANT_AT[0]} ON shots ({PLANT_AT[1]})")
    op.execute(KEYS)
    op.execute("INSERT INTO shot_keys SELECT plant, machine, shot_number FROM shots")
    op.execute(ONCE)
    op.execute(
        "CREATE TRIGGER shot_once BEFORE INSERT ON shots "
        "FOR EACH ROW EXECUTE FUNCTION castline_shot_once()"
    )


def _partition(table: str, unique: str, key: str, indexes: dict[str, str]) -> None:
    conn = op.get_bind()
    old = f"{table}_unpartitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{table} TO pk_{old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {unique} TO uq_{old}")
    for name in indexes:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_unpartitioned")
    # LIKE ... INCLUDING DEFAULTS keeps the columns, NOT NULLs and the id sequence.
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS) PARTITION BY RANGE (at)")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    first, last = conn.execute(text(f"SELECT min(at), max(at) FROM {old}")).one()
    for start, end in _periods(first, last):
        create_partition(conn, table, start, end)
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.execute(f"DROP TABLE {old}")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id, at)")
    with_time = key if key.endswith(", at") else f"{key}, at"  # the partition key is in it
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {unique} UNIQUE ({with_time})")
    for name, columns in indexes.items():
        columns = MACHINE_AT[1] if name == MACHINE_AT[0] else columns
        op.execute(f"CREATE INDEX {name} ON {table} ({columns})")


def _periods(first: datetime | None, last: datetime | None) -> list[tuple[datetime, datetime]]:
    """Monthly periods from this month to AHEAD_MONTHS ahead and, where the existing
    history is not spread absurdly wide, the months it covers."""
    now = datetime.now(UTC)
    start, stop = period_start(now), add_months(now, AHEAD_MONTHS)
    if first is not None and last is not None:
        span = (last.year - first.year) * 12 + last.month - first.month
        if span <= MOST_MONTHS:
            start, stop = min(start, period_start(first)), max(stop, last)
    out = []
    while start <= stop:
        out.append((start, add_months(start, 1)))
        start = out[-1][1]
    return out


def downgrade() -> None:
    op.drop_index(PLANT_AT[0], table_name="shots")
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(MACHINE_AT[0], table_name="shots")
        op.create_index(MACHINE_AT[0], "shots", ["plant", "machine", "at"])
        return
    op.execute("DROP TRIGGER shot_once ON shots")
    op.execute("DROP FUNCTION castline_shot_once()")
    op.execute("DROP TABLE shot_keys")
    for table, unique, key, indexes in (SHOTS, STATES):
        old = f"{table}_partitioned"
        op.execute(f"ALTER TABLE {table} RENAME TO {old}")
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{table} TO pk_{old}")
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {unique} TO uq_{old}")
        for name in indexes:
            op.execute(f"ALTER INDEX {name} RENAME TO {name}_partitioned")
        op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS)")
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
        # the first row of a shot number, as the unpartitioned key keeps it
        op.execute(
            f"INSERT INTO {table} SELECT DISTINCT ON ({key}) * FROM {old} ORDER BY {key}, id"
        )
        op.execute(f"DROP TABLE {old} CASCADE")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {unique} UNIQUE ({key})")
        for name, columns in indexes.items():
            op.execute(f"CREATE INDEX {name} ON {table} ({columns})")
