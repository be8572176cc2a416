"""Bulk loading into PostgreSQL with COPY, still idempotent.

Rows are copied into a session-local staging table, then moved with
`INSERT ... SELECT ... ON CONFLICT DO NOTHING`, so a batch written twice adds nothing,
exactly like the row-by-row path, at COPY speed. A table whose own trigger drops a row
it already holds (`info["once_by_trigger"]`: shots, migration 0012) is copied into
directly: half the server's work for the bulk of the line's records.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Table, TypeDecorator

BULK_MIN_ROWS = 200  # below this, a plain multi-row INSERT is as fast


def copy_insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    columns = list(rows[0])
    json_columns = {c for c in columns if isinstance(table.c[c].type, JSON)}
    times = _time_columns(table, columns)
    names = ", ".join(f'"{c}"' for c in columns)
    raw: Any = conn.connection.dbapi_connection  # psycopg 3: COPY is its own API
    if table.info.get("once_by_trigger"):
        with raw.cursor() as cursor:
            with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                _write_rows(copy, rows, columns, json_columns, times)
            return max(cursor.rowcount, 0)  # rows the trigger let in: those added
    staging = f"_load_{table.name}"
    with raw.cursor() as cursor:
        cursor.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" ON COMMIT DELETE ROWS AS '
            f'SELECT {names} FROM "{table.name}" WITH NO DATA'
        )
        with cursor.copy(f'COPY "{staging}" ({names}) FROM STDIN') as copy:
            _write_rows(copy, rows, columns, json_columns, times)
        cursor.execute(
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{staging}" '
            "ON CONFLICT DO NOTHING"
        )
        added = max(cursor.rowcount, 0)  # one statement: exact, without sending back its keys
        cursor.execute(f'TRUNCATE "{staging}"')
    return added


def _time_columns(table: Table, columns: list[str]) -> set[str]:
    def kind(c: str) -> Any:
        column_type = table.c[c].type
        return column_type.impl if isinstance(column_type, TypeDecorator) else column_type

    return {c for c in columns if isinstance(kind(c), DateTime)}


def _write_rows(
    copy: Any,
    rows: Sequence[dict[str, Any]],
    columns: list[str],
    json_columns: set[str],
    time_columns: set[str],
) -> None:
    """Each row's values in column order; only JSON and timestamp values need a look,
    and which columns those are is found once for the batch."""
    special = [(i, c in json_columns) for i, c in enumerate(columns)
               if c in json_columns or c in time_columns]  # fmt: skip
    for row in rows:
        values = [row[c] for c in columns]
        for i, is_json in special:
            values[i] = _value(values[i], is_json)
        copy.write_row(values)


def _value(value: Any, is_json: bool) -> Any:
    if is_json:  # most shots carry no unknown fields: their `{}` needs no encoder
        return None if value is None else "{}" if value == {} else json.dumps(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("naive datetime: castline stores UTC timestamps with a zone")
    return value
