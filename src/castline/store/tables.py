"""SQLAlchemy Core schema. Alembic migrations in `migrations/` create exactly this.

Every fact the line writes has a natural key with a unique constraint, so writing
it twice (a redelivered message, a replay) is one row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

from castline.domain.units import NAMES

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC, aware on the way in and on the way out (SQLite stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: castline stores UTC timestamps with a zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Id = String(64)
Ts = UtcDateTime()
PK = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only

plants = Table(
    "plants",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False),
)

machines = Table(
    "machines",
    metadata,
    Column("plant", Id, ForeignKey("plants.id"), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("clamp_force_t", Float),
    Column("views", JSON, nullable=False, default=list),
)

dies = Table(
    "dies",
    metadata,
    Column("code", Id, primary_key=True),
    Column("part_name", String(200), nullable=False, default=""),
    Column("rated_life_shots", BigInteger, nullable=False, default=100_000),
    Column("shot_counter", BigInteger, nullable=False, default=0),
    Column("machine", Id),  # where it is mounted now, if anywhere
    Column("plant", Id),
)

die_maintenance = Table(
    "die_maintenance",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("die", Id, ForeignKey("dies.code"), nullable=False),
    Column("at", Ts, nullable=False),
    Column("shot_count", BigInteger, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("note", Text, nullable=False, default=""),
    UniqueConstraint("die", "at", "kind"),
)

shots = Table(
    "shots",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("plant", Id, nullable=False),
    Column("machine", Id, nullable=False),
    Column("shot_number", BigInteger, nullable=False),
    Column("die", Id, nullable=False),
    Column("at", Ts, nullable=False),
    Column("data_matrix", String(128)),
    Column("trial", Boolean, nullable=False, default=False),
    *(Column(name, Float) for name in NAMES),
    Column("extra", JSON, nullable=False, default=dict),
    Column("curve", JSON),
    # The die's golden envelope the curve was checked against (None: not checked) and,
    # if the curve left it, where (None with a version: inside).
    Column("envelope_version", Integer),
    Column("envelope_breach", String(200)),
    # PostgreSQL (migration 0012): partitioned by month of `at`, so this key there is
    # (plant, machine, shot_number, at) and the trigger `shot_once` keeps a second record
    # of a shot number at another time out; the primary key there is (id, at).
    UniqueConstraint("plant", "machine", "shot_number"),
    # the part lists' order, newest first: a machine's, a plant's (migration 0012)
    Index("ix_shots_machine_at", "plant", "machine", "at", "shot_number"),
    Index("ix_shots_plant_at", "plant", "at", "shot_number"),
    Index("ix_shots_die_at", "die", "at"),
    Index("ix_shots_data_matrix", "data_matrix"),  # a photo or station names a part by it
    # On PostgreSQL `shot_once` drops a shot number already recorded, before the row is
    # written: a batch is copied straight in (store/bulk.py), no staging table needed.
    info={"once_by_trigger": True},
)

# The castings of a multi-cavity shot beyond cavity 1 that carry a mark (migration 0009):
# cavity 1's code stays in `shots.data_matrix`.
part_marks = Table(
    "part_marks",
    metadata,
    Column("plant", Id, primary_key=True),
    Column("machine", Id, primary_key=True),
    Column("shot_number", BigInteger, primary_key=True),
    Column("cavity", Integer, primary_key=True),
    Column("data_matrix", String(128), nullable=False),
    Index("ix_part_marks_data_matrix", "data_matrix"),
)


# A part is (plant, machine, shot_number, cavity): one shot of a multi-cavity die makes
# one casting per cavity; single-cavity dies' parts are cavity 1 (migration 0009).
def _cavity() -> Column[int]:
    return Column("cavity", Integer, nullable=False, default=1, server_default="1")


# A shot's curve beside its row, not in it: shot lists and the part API read shots by
# the thousand, curves one at a time; curves may also be dropped sooner than shots.
shot_curves = Table(
    "shot_curves",
    metadata,
    Column("plant", Id, primary_key=True),
    Column("machine", Id, primary_key=True),
    Column("shot_number", BigInteger, primary_key=True),
    Column("rate_hz", Integer, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),  # castline.domain.curve.pack
)

# Each die's golden envelope in versions (castline.domain.envelope.pack); the newest is
# the one the line checks against. Versions are kept: a shot says which one it met.
die_envelopes = Table(
    "die_envelopes",
    metadata,
    Column("die", Id, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("learnt_at", Ts, nullable=False),
    Column("shots", Integer, nullable=False),
    Column("rate_hz", Integer, nullable=False),
    Column("reason", String(80), nullable=False),
    Column("data", LargeBinary, nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("plant", Id, nullable=False),
    Column("machine", Id, nullable=False),
    Column("shot_number", BigInteger, nullable=False),
    _cavity(),
    Column("view", Id, nullable=False),
    Column("at", Ts, nullable=False),
    Column("blob", String(64), nullable=False),  # sha256 of the image bytes
    Column("content_type", String(40), nullable=False),
    Column("verdict", String(16)),  # this view's own verdict; the part's is in `verdicts`
    Column("score", Float),
    Column("heatmap", String(64)),  # blob sha256 of this view's heat-map PNG
    UniqueConstraint("plant", "machine", "shot_number", "cavity", "view"),
)

verdicts = Table(
    "verdicts",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("plant", Id, nullable=False),
    Column("machine", Id, nullable=False),
    Column("shot_number", BigInteger, nullable=False),
    _cavity(),
    Column("verdict", String(16), nullable=False),
    Column("score", Float),
    Column("reason", Text, nullable=False, default=""),
    Column("model_version", String(80)),
    Column("decided_at", Ts, nullable=False),
    Column("latency_ms", Float),
    Column("heatmap", String(64)),  # blob sha256 of the heat-map PNG
    Column("regions", JSON, nullable=False, default=list),
    Column("timings", JSON, nullable=False, default=dict),
    UniqueConstraint("plant", "machine", "shot_number", "cavity"),
    Index("ix_verdicts_decided", "plant", "decided_at"),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("plant", Id, nullable=False),
    Column("machine", Id, nullable=False),
    Column("shot_number", BigInteger, nullable=False),
    _cavity(),
    Column("decision", String(16), nullable=False),  # OK or NG as confirmed by a person
    Column("defect_type", String(40)),
    Column("reviewer", String(80), nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("at", Ts, nullable=False),
    UniqueConstraint("plant", "machine", "shot_number", "cavity"),
)

truths = Table(  # ground truth (simulator, or a plant's later audit), for evaluation
    "truths",
    metadata,
    Column("plant", Id, primary_key=True),
    Column("machine", Id, primary_key=True),
    Column("shot_number", BigInteger, primary_key=True),
    Column("cavity", Integer, primary_key=True, default=1, server_default="1"),
    Column("defective", Boolean, nullable=False),
    Column("defect_type", String(40)),
    Column("cause", Text, nullable=False, default=""),
)

# Partitioned by month of `at` on PostgreSQL (migration 0012; its key holds `at` already).
machine_states = Table(
    "machine_states",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("plant", Id, nullable=False),
    Column("machine", Id, nullable=False),
    Column("state", String(20), nullable=False),
    Column("at", Ts, nullable=False),
    Column("die", Id),
    Column("reason", Text, nullable=False, default=""),
    UniqueConstraint("plant", "machine", "at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("received_at", Ts, nullable=False),
    Column("source", String(300), nullable=False),  # topic or subject, cut to fit
    Column("reason", Text, nullable=False),  # bounded by the writer (repository)
    Column("payload", LargeBinary, nullable=False),  # the first bytes only, bounded
    Column("payload_size", BigInteger, nullable=False),  # bytes of the whole payload
    Column("payload_sha256", String(64), nullable=False),  # of the whole payload
    Column("digest", String(64), nullable=False),  # sha256(source, stream ref, payload)
    UniqueConstraint("digest"),
)

models = Table(
    "models",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("die", Id, nullable=False),
    Column("view", Id, nullable=False),
    Column("version", String(80), nullable=False),
    Column("path", Text, nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("metrics", JSON, nullable=False, default=dict),
    Column("active", Boolean, nullable=False, default=False),
    Column("created_at", Ts, nullable=False),
    UniqueConstraint("die", "view", "version"),
)

# Each activation of a model version, newest last; a rollback marks the newest one rolled
# back and re-activates the one before it, so rollbacks walk back through what was active.
model_activations = Table(
    "model_activations",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("die", Id, nullable=False),
    Column("view", Id, nullable=False),
    Column("version", String(80), nullable=False),
    Column("activated_at", Ts, nullable=False),
    Column("rolled_back_at", Ts),
    Index("ix_model_activations_die_view", "die", "view"),
)

alarms = Table(
    "alarms",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("plant", Id, nullable=False),
    Column("machine", Id),
    Column("die", Id),
    Column("subject", String(80), nullable=False),  # parameter name or "scrap_risk", ...
    Column("rule", String(80), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("dedup_key", String(200), nullable=False),
    Column("raised_at", Ts, nullable=False),
    Column("last_seen_at", Ts, nullable=False),
    Column("count", Integer, nullable=False, default=1),
    Column("acked_by", String(80)),
    Column("acked_at", Ts),
    Column("ack_comment", Text),
    Column("cleared_at", Ts),
    Column("cause_category", String(40)),  # named when acknowledged (domain/alarms.CAUSES)
    Index("ix_alarms_open", "plant", "cleared_at"),
    Index("ix_alarms_dedup", "dedup_key", "cleared_at"),
    # One open alarm per key, whoever raises it (migration 0010).
    Index(
        "ux_alarms_open_key",
        "dedup_key",
        unique=True,
        postgresql_where=text("cleared_at IS NULL"),
        sqlite_where=text("cleared_at IS NULL"),
    ),
)

users = Table(
    "users",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("username", String(80), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),  # viewer, operator, engineer, admin
    Column("plants", JSON, nullable=False, default=list),  # [] = every plant
    Column("created_at", Ts, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("user_id", PK, ForeignKey("users.id"), nullable=False),
    Column("name", String(80), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 of the key
    Column("created_at", Ts, nullable=False),
    Column("revoked_at", Ts),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("at", Ts, nullable=False),
    Column("actor", String(80), nullable=False),
    Column("action", String(80), nullable=False),
    Column("target", String(300), nullable=False, default=""),
    Column("detail", JSON, nullable=False, default=dict),
)

# --- web: server-side sessions, login throttling, plants of audit rows (migration 0004) ---

web_sessions = Table(  # a session cookie works only while its row is live
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 of the id in the cookie
    Column("user_id", PK, ForeignKey("users.id"), nullable=False),
    Column("created_at", Ts, nullable=False),
    Column("expires_at", Ts, nullable=False),
    Column("revoked_at", Ts),
    Index("ix_web_sessions_user", "user_id"),
)

login_failures = Table(  # failed logins per user name and per client address
    "login_failures",
    metadata,
    Column("subject", String(300), primary_key=True),  # "user:<name>" or "address:<ip>"
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", Ts, nullable=False),
    Column("locked_until", Ts),
)

audit_plants = Table(  # the plants an audit row concerns; scoped admins see only theirs
    "audit_plants",
    metadata,
    Column("audit_id", PK, ForeignKey("audit_log.id"), primary_key=True),
    Column("plant", Id, primary_key=True),
)

# --- downstream stations' results (migration 0008) ---

# A station's result for a part, as it named the part (`ref`, `data_matrix`, `ref_machine`,
# `ref_shot_number`, `ref_cavity`); `machine`, `shot_number` and `cavity` are the part it
# joined, null until the part is known (a result may come before its shot: kept, joined
# later).
downstream_results = Table(
    "downstream_results",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("plant", Id, nullable=False),
    Column("station", Id, nullable=False),
    Column("test", Id, nullable=False),  # xray, leak, machining, cmm, ...
    Column("result", String(8), nullable=False),  # OK or NG
    Column("defect_type", String(40)),
    Column("tested_at", Ts, nullable=False),
    Column("received_at", Ts, nullable=False),
    Column("ref", String(160), nullable=False),  # domain.downstream.PartRef as text
    Column("data_matrix", String(128)),
    Column("ref_machine", Id),
    Column("ref_shot_number", BigInteger),
    Column("ref_cavity", Integer),
    Column("machine", Id),
    Column("shot_number", BigInteger),
    Column("cavity", Integer),
    Column("matched_at", Ts),
    Column("values", JSON, nullable=False, default=dict),
    Column("note", Text, nullable=False, default=""),
    Column("source", String(120), nullable=False),  # "broker" or "api:<user>"
    UniqueConstraint("plant", "station", "test", "ref", "tested_at"),
    Index("ix_downstream_part", "plant", "machine", "shot_number"),
    Index("ix_downstream_unmatched", "plant", "matched_at"),
)

# --- stop classes a person gave, logged inspection hours (migration 0007) ---

stop_classes = Table(  # a person's class for the stop that began at `started_at`
    "stop_classes",
    metadata,
    Column("plant", Id, primary_key=True),
    Column("machine", Id, primary_key=True),
    Column("started_at", Ts, primary_key=True),  # the stop's machine state `at`
    Column("stop_class", String(20), nullable=False),  # domain.stops.StopClass
    Column("reason", Text, nullable=False, default=""),
    Column("classified_by", String(80), nullable=False),
    Column("classified_at", Ts, nullable=False),
)

labour_log = Table(  # person-hours of work logged per stretch (a shift, a day)
    "labour_log",
    metadata,
    Column("plant", Id, primary_key=True),
    Column("work", String(20), primary_key=True),  # "inspection"
    Column("started_at", Ts, primary_key=True),
    Column("ended_at", Ts, nullable=False),
    Column("hours", Float, nullable=False),
    Column("logged_by", String(80), nullable=False),
    Column("note", Text, nullable=False, default=""),
)

# The baseline each live control chart set learnt (migration 0011): one per machine and
# die, for its current set-point regime. `limits` holds parameter names and, per name,
# centre, sigma of a shot and sigma for drift (domain/live_spc.Baseline).
chart_baselines = Table(
    "chart_baselines",
    metadata,
    Column("plant", Id, primary_key=True),
    Column("machine", Id, primary_key=True),
    Column("die", Id, primary_key=True),
    Column("regime", Integer, nullable=False),
    Column("shots", Integer, nullable=False),
    Column("limits", JSON, nullable=False),
    Column("learnt_at", Ts, nullable=False),
)

# Per machine, hour (UTC) and die: how the castings of the shots cast in that hour were
# decided (migration 0013). The KPIs of closed hours read these rows, not the shots;
# `store/rollups.py` makes them from the part join and makes them again where facts
# come late. `rollup_marks` holds how far it has gone (hours, ids of each source).
shot_hours = Table(
    "shot_hours",
    metadata,
    Column("plant", Id, primary_key=True),
    Column("machine", Id, primary_key=True),
    Column("hour", Ts, primary_key=True),
    Column("die", Id, primary_key=True),
    Column("castings", Integer, nullable=False),  # production: castings of non-trial shots
    Column("good", Integer, nullable=False),
    Column("scrap", Integer, nullable=False),
    Column("first_good", Integer, nullable=False),
    Column("escapes", Integer, nullable=False),
    Column("trials", Integer, nullable=False),  # castings of trial shots
    # the production shots' cycle times, exact, comma-separated (`rollups.cycle_times`);
    # NULL: made before migration 0014, the KPIs read those hours' shots for the median
    Column("cycles", Text),
    Index("ix_shot_hours_plant_hour", "plant", "hour"),
)

rollup_marks = Table(
    "rollup_marks",
    metadata,
    Column("name", Id, primary_key=True),
    Column("mark", BigInteger, nullable=False),
)
