"""Edge to cloud: the central site copies every plant's stream, and survives cut uplinks.

Each plant's nats-server is a JetStream domain of its own (the plant id) and a leaf node
of the central hub (domain "hub"). The plant's line only talks to its local server, so a
cut uplink never stops it; its stream `CASTLINE` keeps everything on disk meanwhile. At the
hub, the stream `CASTLINE_CENTRAL` sources each plant's `CASTLINE` through the plant's
domain API (`$JS.<plant>.API`): JetStream replays what the hub has not seen, in the plant's
order, whenever the leaf connection is up. Nothing here moves messages itself.

A plant has up to two sources: its records (every subject but the photos: shots, states,
truths, downstream results, verdicts...) always, and its photos only where the hub was
told to. Each source remembers its own position (the plant sequence in the header of the
last message it copied), so turning photos on or off never touches the records' copy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import (
    ExternalStream,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
    SubjectTransform,
)
from nats.js.errors import NotFoundError

from castline.messaging import jetstream
from castline.messaging.topics import check_id

HUB_DOMAIN = "hub"
CENTRAL_STREAM = "CASTLINE_CENTRAL"
STALLED_S = 10.0  # a source silent this long while its plant answers has stalled
WATCH_S = 3.0  # how often the hub looks for stalled sources

PHOTOS = "castline.v1.*.*.image.*"  # a camera's photo: plant, machine, "image", view
# Everything else, as filters that do not overlap the photos' (JetStream has no "but"):
# by number of levels, leaving out only six-level subjects. In protocol v1 the only
# six-level subject is a photo; anything else that long is a mistyped topic the plant's
# line dead-letters, and it stays at the plant.
RECORDS = (
    "castline.v1.*",
    "castline.v1.*.*",
    "castline.v1.*.*.*",  # shot, state, cell, truth, downstream, availability
    "castline.v1.*.*.*.*.>",
    "castline.out.v1.>",  # what the line says: verdicts (with their defect regions)
)
Part = Literal["records", "photos", "all"]  # "all": a source from before photos were optional


@dataclass(frozen=True)
class PlantLag:
    """How far the central copy of one plant is behind, as the hub last heard it."""

    plant: str
    lag: int  # messages the plant's stream had that the hub had not yet copied
    last_heard_s: float | None  # since the hub last heard from the plant; None: never
    error: str | None = None  # why the hub cannot source the plant, if it says so
    photos: bool = False  # whether the hub copies the plant's photos too


def check_plant(plant: str) -> str:
    """A plant id that can be a JetStream domain of its own; ValueError says why not."""
    if check_id(plant, "plant") == HUB_DOMAIN:
        raise ValueError(f"plant id {HUB_DOMAIN!r} is the hub's JetStream domain")
    return plant


def api_prefix(plant: str) -> str:
    return f"$JS.{plant}.API"


def _external(plant: str) -> ExternalStream:
    return ExternalStream(api=api_prefix(check_plant(plant)))


def records_source(plant: str) -> StreamSource:
    """The plant's stream less its photos, reached through its domain across the leaf node.
    Identity transforms: each one's subject is a filter (nats-server 2.10+)."""
    transforms = [SubjectTransform(src=s, dest="") for s in RECORDS]
    return StreamSource(
        name=jetstream.STREAM, external=_external(plant), subject_transforms=transforms
    )


def photos_source(plant: str) -> StreamSource:
    return StreamSource(name=jetstream.STREAM, external=_external(plant), filter_subject=PHOTOS)


def plant_sources(plant: str, photos: bool) -> list[StreamSource]:
    return [records_source(plant)] + ([photos_source(plant)] if photos else [])


def _plant_of_api(api: object) -> str | None:
    parts = str(api).split(".")
    return parts[1] if api and len(parts) == 3 else None


def _plant_of(source: dict[str, object]) -> str | None:
    external = source.get("external")
    return _plant_of_api(external.get("api") if isinstance(external, dict) else None)


def _part_of(source: dict[str, object]) -> Part:
    if source.get("filter_subject") == PHOTOS:
        return "photos"
    transforms = source.get("subject_transforms")
    listed = transforms if isinstance(transforms, list) else []
    subjects = {t.get("src") for t in listed if isinstance(t, dict)}
    return "records" if subjects == set(RECORDS) else "all"


def _source_plant(source: StreamSource) -> str | None:
    return _plant_of_api(source.external.api if source.external else None)


def _source_part(source: StreamSource) -> Part:
    transforms = source.subject_transforms or []
    return _part_of(
        {
            "filter_subject": source.filter_subject,
            "subject_transforms": [{"src": t.src} for t in transforms],
        }
    )


async def _config(nc: NATS) -> StreamConfig | None:
    try:
        return (await nc.jetstream().stream_info(CENTRAL_STREAM)).config
    except NotFoundError:
        return None


async def _set_sources(nc: NATS, config: StreamConfig, sources: list[StreamSource]) -> None:
    config.sources = sources or None
    await nc.jetstream().update_stream(config)


async def ensure_central(nc: NATS, plants: list[str], photos: list[str] | None = None) -> None:
    """Create the central stream, or add the plants it does not source yet, and the photos
    of the plants in `photos`. Never removes a plant or its photos: a hub restarted with
    fewer `--plant` options keeps what was added to it live."""
    with_photos = set(photos or [])
    for plant in [*plants, *with_photos]:
        check_plant(plant)
    config = await _config(nc)
    if config is None:
        sources = [s for p in dict.fromkeys(plants) for s in plant_sources(p, p in with_photos)]
        await nc.jetstream().add_stream(_central_config(sources))
        return
    sources = list(config.sources or [])
    have = {(_source_plant(s), _source_part(s)) for s in sources}
    missing = []
    for plant in dict.fromkeys([*plants, *with_photos]):
        if not any((plant, part) in have for part in ("records", "all")):
            missing.append(records_source(plant))
        if plant in with_photos and not {(plant, "photos"), (plant, "all")} & have:
            missing.append(photos_source(plant))
    if missing:
        await _set_sources(nc, config, sources + missing)


def _central_config(sources: list[StreamSource]) -> StreamConfig:
    # No subjects of its own: only the sources write here, so a plant's traffic that
    # crosses the leaf node live is never stored a second time.
    return StreamConfig(
        name=CENTRAL_STREAM,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=jetstream.MAX_AGE.total_seconds(),
        sources=sources or None,
    )


async def copied_plants(nc: NATS) -> dict[str, set[Part]]:
    """The plants the hub copies, and what of each (records, photos)."""
    config = await _config(nc)
    plants: dict[str, set[Part]] = {}
    for source in (config.sources or []) if config else []:
        if (plant := _source_plant(source)) is not None:
            plants.setdefault(plant, set()).add(_source_part(source))
    return plants


async def add_plant(nc: NATS, plant: str, photos: bool = False, create: bool = False) -> bool:
    """Start copying `plant` (and its photos, if asked); False if it was copied already.
    The hub's watch reads the sources from the stream, so a running hub copies the plant
    at once, without a restart. Without `create`, a server with no central stream (not a
    hub: a plant's, say) is refused rather than made one."""
    check_plant(plant)
    if not create and await _config(nc) is None:
        raise NotFoundError(description=f"no stream {CENTRAL_STREAM}")
    known = plant in await copied_plants(nc)
    await ensure_central(nc, [plant], [plant] if photos else [])
    return not known


async def remove_plant(nc: NATS, plant: str) -> None:
    """Stop copying `plant`. What was copied stays; added again, its copy resumes after the
    last message the central stream holds of it (the headers say where)."""
    await _change_plant(nc, plant, lambda sources: [])


async def set_photos(nc: NATS, plant: str, on: bool) -> bool:
    """Copy the plant's photos, or stop; True if that changed anything. The records'
    source is left alone, so its copy goes on where it is. Photos turned on copy those the
    plant still keeps (its stream's age and size limits) after the last photo the hub
    holds: none twice."""

    def change(sources: list[StreamSource]) -> list[StreamSource]:
        parts = {_source_part(s) for s in sources}
        if "all" in parts:
            if on:
                return sources
            raise ValueError(
                f"the hub copies all of {plant} through one source set up before photos "
                "were optional; leaving photos out would copy its records again"
            )
        kept = [s for s in sources if _source_part(s) != "photos"]
        if on and len(kept) < len(sources):
            return sources  # as the server has them: nothing to change
        return kept + ([photos_source(plant)] if on else [])

    return await _change_plant(nc, plant, change)


Change = Callable[[list[StreamSource]], list[StreamSource]]


async def _change_plant(nc: NATS, plant: str, change: Change) -> bool:
    check_plant(plant)
    config = await _config(nc)
    sources = list((config.sources or []) if config else [])
    mine = [s for s in sources if _source_plant(s) == plant]
    if config is None or not mine:
        raise LookupError(f"the hub does not copy plant {plant!r}")
    wanted = change(mine)
    if [s.as_dict() for s in wanted] == [s.as_dict() for s in mine]:
        return False
    others = [s for s in sources if _source_plant(s) != plant]
    await _set_sources(nc, config, others + wanted)
    return True


async def plant_lags(nc: NATS, timeout: float = 5.0) -> list[PlantLag]:
    """The source lag of every plant, from the central stream's info.

    Read raw: the client's StreamSourceInfo drops `external`, which names the plant. A
    plant's sources add up: their lags summed, the one heard from longest ago counts.
    """
    reply = await nc.request(f"$JS.API.STREAM.INFO.{CENTRAL_STREAM}", b"", timeout=timeout)
    body = json.loads(reply.data)
    if "error" in body:
        raise NotFoundError(description=body["error"].get("description"))
    lags: dict[str, PlantLag] = {}
    for source in body.get("sources") or []:
        plant = _plant_of(source)
        if plant is None:
            continue
        active = int(source.get("active", -1))
        error = source.get("error")
        lag = PlantLag(
            plant=plant,
            lag=int(source.get("lag", 0)),
            last_heard_s=active / 1e9 if active >= 0 else None,
            error=error.get("description") if isinstance(error, dict) else None,
            photos=_part_of(source) != "records",
        )
        lags[plant] = _merged(lags[plant], lag) if plant in lags else lag
    return sorted(lags.values(), key=lambda lag: lag.plant)


def _merged(a: PlantLag, b: PlantLag) -> PlantLag:
    heard = None
    if a.last_heard_s is not None and b.last_heard_s is not None:
        heard = max(a.last_heard_s, b.last_heard_s)
    return PlantLag(a.plant, a.lag + b.lag, heard, a.error or b.error, a.photos or b.photos)


async def plant_reachable(nc: NATS, plant: str, timeout: float = 2.0) -> bool:
    """Whether the plant's JetStream answers across the leaf node (its uplink is up)."""
    subject = f"{api_prefix(plant)}.STREAM.INFO.{jetstream.STREAM}"
    try:
        await nc.request(subject, b"", timeout=timeout)
    except (NatsTimeout, NoRespondersError):
        return False
    return True


async def resume_stalled(nc: NATS, stalled_s: float = STALLED_S) -> list[str]:
    """Re-attach the sources of plants that answer again but whose copy has not resumed.

    After a long cut the server retries a source only every 10 s x failures (up to 2 min).
    A source removed and added again by a stream update starts at once, from the last
    plant sequence the central stream holds of it: no gap, no duplicate.
    """
    stalled = [
        lag.plant
        for lag in await plant_lags(nc)
        if (lag.last_heard_s is None or lag.last_heard_s > stalled_s)
        and await plant_reachable(nc, lag.plant)
    ]
    config = await _config(nc) if stalled else None
    if config is None:
        return []
    sources = list(config.sources or [])
    keep = [s for s in sources if _source_plant(s) not in stalled]
    again = [s for s in sources if _source_plant(s) in stalled]  # as they were: same filters
    await _set_sources(nc, config, keep)
    await _set_sources(nc, config, keep + again)
    return stalled
