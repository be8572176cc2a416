"""Exports as plants really send them: other encodings, bad bytes, missing columns.

Each case ends in a one-line message or in rows counted with their reason, never in a
traceback, and the rows that can be read are imported.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from castline.analytics import importer, mapping
from castline.analytics.export_file import ExportError
from castline.cli import app
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store

ROWS = 120


@pytest.fixture
def export(kamp_data: Path) -> tuple[str, list[str]]:
    """Header and the first rows of a real KAMP export, as text."""
    text = (kamp_data / "process" / "train_group_8412.csv").read_text(encoding="utf-8-sig")
    header, *rows = text.splitlines()[: ROWS + 1]
    return header, rows


def write(path: Path, header: str, rows: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


def without(header: str, rows: list[str], column: str) -> tuple[str, list[str]]:
    index = header.split(",").index(column)

    def drop(line: str) -> str:
        return ",".join(c for i, c in enumerate(line.split(",")) if i != index)

    return drop(header), [drop(r) for r in rows]


def run(engine: Engine, path: Path, **options: object) -> importer.ImportReport:
    database.upgrade(engine)
    return importer.import_shots(engine, path, mapping.KAMP, "p1", progress=False, **options)  # type: ignore[arg-type]


def test_korean_mes_text_is_read_in_its_encoding(
    sqlite_engine: Engine, tmp_path: Path, export: tuple[str, list[str]]
) -> None:
    report = run(sqlite_engine, write(tmp_path / "cp949.csv", *export, encoding="cp949"))
    assert report.encoding == "cp949"
    assert report.shots_added == ROWS and not report.rejected
    states = {s["state"] for s in Store(sqlite_engine).states("p1")}
    assert "running" in states  # 가동 read as running, not as mojibake


def test_a_bad_byte_mid_file_rejects_its_row_only(
    sqlite_engine: Engine, tmp_path: Path, export: tuple[str, list[str]]
) -> None:
    header, rows = export
    path = write(tmp_path / "bad.csv", header, rows)
    data = bytearray(path.read_bytes())
    line_start = data.index(rows[60][:25].encode())
    data[line_start + 30 : line_start + 30] = b"\xff\xfe"
    path.write_bytes(bytes(data))
    report = run(sqlite_engine, path)
    assert report.encoding == "utf-8-sig"
    assert report.rejected == {"undecodable bytes in the row": 1}
    assert report.shots_added == ROWS - 1


def test_date_and_time_columns_stand_in_for_a_missing_timestamp(
    sqlite_engine: Engine, tmp_path: Path, export: tuple[str, list[str]]
) -> None:
    report = run(sqlite_engine, write(tmp_path / "nodt.csv", *without(*export, "datetime")))
    assert report.shots_added == ROWS and not report.rejected


def test_optional_columns_missing_are_named_not_fatal(
    sqlite_engine: Engine, tmp_path: Path, export: tuple[str, list[str]]
) -> None:
    header, rows = without(*export, "passorfail")
    header, rows = without(header, rows, "molten_temp")
    report = run(sqlite_engine, write(tmp_path / "nolabel.csv", header, rows))
    assert report.shots_added == ROWS and report.truths_added == 0
    assert any("'passorfail': quality labels not imported" in n for n in report.notes)
    assert any("'molten_temp': melt_temp_c not imported" in n for n in report.notes)


def test_a_missing_required_column_or_empty_file_is_one_clear_error(
    sqlite_engine: Engine, tmp_path: Path, export: tuple[str, list[str]]
) -> None:
    with pytest.raises(ExportError, match="no column 'mold_code' \\(the die\\)"):
        run(sqlite_engine, write(tmp_path / "nodie.csv", *without(*export, "mold_code")))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ExportError, match="empty"):
        run(sqlite_engine, empty)


def test_numbers_that_are_not_numbers_and_conflicting_labels_are_counted(
    sqlite_engine: Engine, tmp_path: Path, export: tuple[str, list[str]]
) -> None:
    header, rows = export
    columns = header.split(",")
    broken = rows[5].split(",")
    broken[columns.index("molten_temp")] = "abc"
    relabelled = rows[9].split(",")
    label = columns.index("passorfail")
    relabelled[label] = "1" if relabelled[label] == "0" else "0"
    changed = [*rows[:5], ",".join(broken), *rows[6:], ",".join(relabelled)]
    report = run(sqlite_engine, write(tmp_path / "odd.csv", header, changed))
    assert report.unreadable == {"melt_temp_c": 1}
    assert report.examples["melt_temp_c"] == "abc"
    assert report.label_conflicts == 1
    assert Store(sqlite_engine).count(t.truths, plant="p1") == ROWS


def test_rows_out_of_time_order_are_counted_and_states_stay_few(
    sqlite_engine: Engine, tmp_path: Path, export: tuple[str, list[str]]
) -> None:
    header, rows = export
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    report = run(sqlite_engine, write(tmp_path / "shuffled.csv", header, shuffled), batch=10)
    assert report.shots_added == ROWS
    assert report.out_of_order > ROWS // 2
    assert report.states_added < 20  # not one state per shuffled row


def test_the_cli_says_what_is_wrong_without_a_traceback(
    tmp_path: Path, export: tuple[str, list[str]]
) -> None:
    path = write(tmp_path / "nodie.csv", *without(*export, "mold_code"))
    env = {"CASTLINE_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(app, ["import", "shots", str(path)], env=env)
    assert result.exit_code == 2
    assert "no column 'mold_code'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(
        app, ["import", "shots", str(path), "--encoding", "klingon"], env=env
    )
    assert result.exit_code == 2 and "unknown encoding" in result.output
    chinese = CliRunner().invoke(
        app, ["import", "shots", str(path)], env=env | {"CASTLINE_LANG": "zh"}
    )
    assert chinese.exit_code == 2 and chinese.output.startswith("错误：")
