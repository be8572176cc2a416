"""Trouble first: the overview ranks machines by what needs a person now."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from castline.store import tables as t
from castline.web.overview import Level, part_label, ranked, trouble

from .conftest import Plant, as_user


def tile(
    machine: str, state: str = "running", alarms: int = 0, **verdicts: int
) -> dict[str, object]:
    return {"machine": machine, "state": state, "alarms_open": alarms, "verdicts_today": verdicts}


def test_levels_and_reasons() -> None:
    assert trouble(tile("m1", OK=100)).level is Level.GREEN
    assert trouble(tile("m1", OK=95, NG=5)).level is Level.AMBER  # 5 % scrap
    assert trouble(tile("m1", OK=80, NG=20)).level is Level.RED
    assert trouble(tile("m1", state="breakdown", OK=10)).level is Level.RED
    assert trouble(tile("m1", state="idle")).level is Level.AMBER
    assert trouble(tile("m1", OK=10, QUARANTINE=1)).level is Level.AMBER
    found = trouble(tile("m1", state="offline", alarms=2, OK=9, NG=1))
    assert [r.message for r in found.reasons] == ["why.alarms", "why.stopped", "why.scrap"]
    assert found.scrap_rate == 0.1


def test_ranking_puts_open_alarms_and_scrap_first() -> None:
    order = ranked([
        tile("m1", OK=100), tile("m2", OK=90, NG=10), tile("m3", alarms=1, OK=100),
        tile("m4", alarms=3, OK=100), tile("m5", OK=99, QUARANTINE=1),
    ])  # fmt: skip
    assert [t_["machine"] for t_, _ in order] == ["m4", "m3", "m2", "m5", "m1"]


def test_part_key_reads_aloud() -> None:
    assert part_label("m3", 1234) == "m3 · #1,234"
    assert part_label("m3", 288228717) == "m3 · #288,228,717"


def test_a_machine_with_an_open_alarm_comes_first(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    seeded = plant[1]
    now = datetime.now(UTC)
    with seeded.engine.begin() as conn:  # m1's alarm clears; m2 gets one
        conn.execute(
            update(t.alarms).where(t.alarms.c.id == seeded.alarm_p1).values(cleared_at=now)
        )
        conn.execute(
            insert(t.alarms).values(
                plant="p1", machine="m2", die="D1", subject="vacuum_mbar", rule="nelson_1",
                severity="critical", message="vacuum lost", dedup_key="p1/m2/vac",
                raised_at=now, last_seen_at=now, count=1,
            )
        )  # fmt: skip
    page = client.get("/plants/p1", headers=as_user(seeded, "viewer")).text
    machines = re.findall(r'<article class="tile level-(\w+)" data-machine="(\w+)"', page)
    assert machines[0] == ("red", "m2")
    assert "Act now" in page and "1 open alarm(s)" in page
    assert "Legend" in page and "open alarm, stopped machine or scrap rate over 10 %" in page
    chinese = client.get("/plants/p1?lang=zh", headers=as_user(seeded, "viewer")).text
    assert "立即处理" in chinese and "1 条未处理报警" in chinese and "今日废品率" in chinese
