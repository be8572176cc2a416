"""System of record: SQLAlchemy Core tables, Alembic migrations, queries, blob store."""
