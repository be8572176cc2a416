"""The central site's plants changed live: added, removed, photos on and off, no restart.

Real nats-server processes on loopback, as in `test_uplink.py`: a hub (JetStream domain
"hub") and plants (each its own domain) that are its leaf nodes. Every check reads the
central stream message by message: each plant message the hub should have, once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import nats
from nats.aio.client import Client as NATS
from typer.testing import CliRunner

from castline.cli import app
from castline.messaging import jetstream, uplink
from castline.messaging.broker import EmbeddedNats, free_port, port_free
from tests.line.conftest import until
from tests.line.test_uplink import (
    Message,
    assert_exact_copy,
    hub_server,
    is_photo,
    messages,
    plant_seq,
    stream_count,
    travelling,
)

KINDS = ("shot", "state", "truth", "cell")


def plant_server(tmp_path: Path, plant: str, leaf_port: int) -> EmbeddedNats:
    return EmbeddedNats(tmp_path / plant, port=free_port(), mqtt_port=None, name=plant,
                        domain=plant, leaf_remotes=(f"nats://127.0.0.1:{leaf_port}",))  # fmt: skip


async def publish(nc: NATS, plant: str, parts: range) -> None:
    """Per part: its records, a photo, the line's verdict, and a station's result."""
    js = nc.jetstream()
    for n in parts:
        for kind in KINDS:
            await js.publish(f"castline.v1.{plant}.m1.{kind}", b"%s %d" % (kind.encode(), n))
        await js.publish(f"castline.v1.{plant}.m1.image.front", b"photo %d" % n)
        await js.publish(f"castline.out.v1.{plant}.m1.verdict", b"verdict %d" % n)
        await js.publish(f"castline.v1.{plant}.xray.downstream", b"xray %d" % n)


def plant_of(subject: str) -> str:
    levels = subject.split(".")
    return levels[3] if levels[1] == "out" else levels[2]


async def central_of(hub: NATS, plant: str) -> list[tuple[Message, int]]:
    count = await stream_count(hub, uplink.CENTRAL_STREAM)
    listed = await messages(hub, uplink.CENTRAL_STREAM, count)
    return [(m, plant_seq(s)) for m, s in listed if plant_of(m[0]) == plant]


async def assert_plant_copied(
    nc: NATS, hub: NATS, plant: str, photos: bool, timeout: float = 60.0
) -> int:
    """What the hub copies of `plant` (photos only if asked), each message once; records
    and photos each in the plant's order."""
    return await assert_central(hub, plant, await travelling(nc, photos), timeout)


async def assert_central(
    hub: NATS, plant: str, expected: list[tuple[Message, int]], timeout: float = 60.0
) -> int:
    """The central stream holds `expected` of `plant`, each once, with records and photos
    each in the plant's order."""
    for _ in range(int(timeout / 0.3)):
        if len(await central_of(hub, plant)) >= len(expected):
            break
        await asyncio.sleep(0.3)
    await asyncio.sleep(1.0)  # a duplicate would arrive after the count matched
    copied = await central_of(hub, plant)
    for kind in (True, False):
        seqs = [seq for m, seq in copied if is_photo(m[0]) == kind]
        assert seqs == sorted(seqs)
    assert sorted(copied, key=lambda copy: copy[1]) == expected
    return len(copied)


async def castline(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "castline.cli", *args]
    env = {**os.environ, "CASTLINE_HOME": str(home), "CASTLINE_LANG": "en"}
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )


async def test_plant_added_to_a_running_hub_is_copied_at_once(tmp_path: Path) -> None:
    """`castline hub --plant pa --with-photos pa` runs; `castline hub add-plant pb` gives it
    a second plant live; pa's copy goes on undisturbed, pb's records come, its photos not
    until `castline hub photos pb on`."""
    port, leaf_port, home = free_port(), free_port(), tmp_path / "central"
    command = [sys.executable, "-m", "castline.cli", "hub", "--plant", "pa", "--with-photos",
               "pa", "--port", str(port), "--leaf-port", str(leaf_port), "--every", "1",
               "--for", "120"]  # fmt: skip
    env = {**os.environ, "CASTLINE_HOME": str(home), "CASTLINE_LANG": "en"}
    hub = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    url = f"nats://127.0.0.1:{port}"
    pa, pb = plant_server(tmp_path, "pa", leaf_port), plant_server(tmp_path, "pb", leaf_port)
    pa.start()
    pb.start()
    try:
        ac, bc = await nats.connect(pa.url), await nats.connect(pb.url)
        for nc in (ac, bc):
            await jetstream.ensure_stream(nc.jetstream())
        await publish(ac, "pa", range(10))
        await publish(bc, "pb", range(10))
        await until(lambda: not port_free(port), 30)
        hc = await nats.connect(url)
        assert await assert_plant_copied(ac, hc, "pa", photos=True) == 70
        assert await central_of(hc, "pb") == []  # not a plant of this hub yet

        added = await castline("hub", "add-plant", "pb", "--hub", url, home=home)
        assert added.returncode == 0 and "pb: added" in added.stdout
        again = await castline("hub", "add-plant", "pb", "--hub", url, home=home)
        assert again.returncode == 0 and "copies it already" in again.stdout
        await publish(ac, "pa", range(10, 20))
        await publish(bc, "pb", range(10, 20))
        assert await assert_plant_copied(bc, hc, "pb", photos=False) == 120  # all 20 parts
        assert await assert_plant_copied(ac, hc, "pa", photos=True) == 140
        listed = await castline("hub", "plants", "--hub", url, home=home)
        lines = listed.stdout.splitlines()
        assert lines[0].startswith("pa: 0 messages behind") and "photos copied" in lines[0]
        assert lines[1].startswith("pb: 0 messages behind") and "photos" not in lines[1]

        on = await castline("hub", "photos", "pb", "on", "--hub", url, home=home)
        assert on.returncode == 0 and "photos copied now" in on.stdout
        assert await assert_plant_copied(bc, hc, "pb", photos=True) == 140
        assert await assert_plant_copied(ac, hc, "pa", photos=True) == 140
        await hc.close()
        await ac.close()
        await bc.close()
    finally:
        pa.stop()
        pb.stop()
        hub.terminate()
        out, _ = hub.communicate(timeout=30)
    assert "pb: 0 messages behind" in out  # the running hub's watch reports the new plant


async def test_photos_stay_at_the_plant_unless_asked_and_none_travel_twice(
    tmp_path: Path,
) -> None:
    hub = hub_server(tmp_path, free_port())
    assert hub.leaf_port
    plant = plant_server(tmp_path, "p1", hub.leaf_port)
    hub.start()
    plant.start()
    pc, hc = await nats.connect(plant.url), await nats.connect(hub.url)
    try:
        await jetstream.ensure_stream(pc.jetstream())
        await uplink.ensure_central(hc, ["p1"])
        await publish(pc, "p1", range(5))
        assert await assert_exact_copy(pc, hc) == 30  # 5 x shot, state, truth, cell, ...
        subjects = {m[0] for m, _ in await messages(hc, uplink.CENTRAL_STREAM, 30)}
        assert "castline.out.v1.p1.m1.verdict" in subjects
        assert "castline.v1.p1.xray.downstream" in subjects
        assert not any(is_photo(s) for s in subjects)
        (lag,) = await uplink.plant_lags(hc)
        assert not lag.photos

        assert await uplink.set_photos(hc, "p1", True)
        assert await assert_exact_copy(pc, hc, photos=True) == 35  # the photos kept, once
        assert (await uplink.plant_lags(hc))[0].photos
        assert not await uplink.set_photos(hc, "p1", True)  # nothing to change

        assert await uplink.set_photos(hc, "p1", False)
        await publish(pc, "p1", range(5, 10))
        everything = await travelling(pc, photos=True)
        # the new photos stay at the plant, the records and the earlier photos are there
        expected = [(m, seq) for m, seq in everything if seq <= 35 or not is_photo(m[0])]
        assert await assert_central(hc, "p1", expected) == 70 - 5
        assert await uplink.set_photos(hc, "p1", True)  # ... until asked for again
        assert await assert_exact_copy(pc, hc, photos=True) == 70

        await uplink.remove_plant(hc, "p1")
        assert await uplink.copied_plants(hc) == {}
        await publish(pc, "p1", range(10, 15))
        assert await uplink.add_plant(hc, "p1", photos=True)  # resumes where it stood
        assert await assert_exact_copy(pc, hc, photos=True) == 105
    finally:
        await pc.close()
        await hc.close()
        plant.stop()
        hub.stop()


async def test_hub_commands_say_each_mistake_in_one_line(tmp_path: Path) -> None:
    hub = hub_server(tmp_path, free_port())
    hub.start()
    runner = CliRunner()
    env = {"CASTLINE_HOME": str(tmp_path / "home"), "CASTLINE_LANG": "en"}

    async def say(*args: str, lang: str = "en") -> tuple[int, str]:
        done = await asyncio.to_thread(
            runner.invoke, app, ["hub", *args], env={**env, "CASTLINE_LANG": lang}
        )
        return done.exit_code, done.output.strip()

    try:
        cases = {
            ("add-plant", "a.b"): (2, "error: plant id 'a.b' must be 1 to 64 letters"),
            ("add-plant", "hub"): (2, "error: plant id 'hub' must be"),
            ("add-plant", "p1", "--hub", "p1:4222"): (2, "error: --hub p1:4222: give the hub"),
            ("photos", "p1", "yes", "--hub", hub.url): (2, "error: photos yes? say on or off"),
            ("photos", "p9", "on", "--hub", hub.url): (2, "error: the hub does not copy"),
            ("plants", "--hub", hub.url): (1, "error: the server at"),  # no central stream
            ("add-plant", "p1", "--hub", hub.url): (1, "error: the server at"),  # not made
            ("plants", "--hub", f"nats://127.0.0.1:{free_port()}"): (1, "error: cannot reach"),
        }
        for args, (code, start) in cases.items():
            exit_code, output = await say(*args)
            assert (exit_code, output.splitlines()[0][: len(start)]) == (code, start), args
            assert len(output.splitlines()) == 1, output  # one line, no traceback
        hc = await nats.connect(hub.url)
        await uplink.ensure_central(hc, ["p1"])
        await hc.close()
        assert await say("remove-plant", "p9", "--hub", hub.url) == (
            2,
            "error: the hub does not copy plant 'p9' (see `castline hub plants`)",
        )
        code, output = await say("add-plant", "a b", lang="zh")
        assert code == 2 and output.startswith("错误：工厂 id 'a b' 须为")
    finally:
        hub.stop()
