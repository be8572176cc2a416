"""Edge to cloud: the central site copies every plant's stream, and survives cut uplinks.

Each plant's nats-server is a JetStream domain of its own (the plant id) and a leaf node
of the central hub (domain "hub"). The plant's line only talks to its local server, so a
cut uplink never stops it; its stream `CASTLINE` keeps everything on disk meanwhile. At the
hub, the stream `CASTLINE_CENTRAL` sources each plant's `CASTLINE` through the plant's
domain API (`$JS.<plant>.API`): JetStream replays what the hub has not seen, in the plant's
order, whenever the leaf connection is up. Nothing here moves messages itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import (
    ExternalStream,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)
from nats.js.errors import NotFoundError

from castline.messaging import jetstream
from castline.messaging.topics import check_id

HUB_DOMAIN = "hub"
CENTRAL_STREAM = "CASTLINE_CENTRAL"
STALLED_S = 10.0  # a source silent this long while its plant answers has stalled
WATCH_S = 3.0  # how often the hub looks for stalled sources


@dataclass(frozen=True)
class PlantLag:
    """How far the central copy of one plant is behind, as the hub last heard it."""

    plant: str
    lag: int  # messages the plant's stream had that the hub had not yet copied
    last_heard_s: float | None  # since the hub last heard from the plant; None: never
    error: str | None = None  # why the hub cannot source the plant, if it says so

    def line(self) -> str:
        heard = "never" if self.last_heard_s is None else f"{self.last_heard_s:.1f} s ago"
        return f"{self.plant}: {self.lag} messages behind, last heard {heard}" + (
            f", error: {self.error}" if self.error else ""
        )


def plant_source(plant: str) -> StreamSource:
    """The plant's stream, reached through its JetStream domain across the leaf node."""
    if check_id(plant, "plant") == HUB_DOMAIN:
        raise ValueError(f"plant id {HUB_DOMAIN!r} is the hub's JetStream domain")
    return StreamSource(name=jetstream.STREAM, external=ExternalStream(api=api_prefix(plant)))


def api_prefix(plant: str) -> str:
    return f"$JS.{plant}.API"


def _plant_of(source: dict[str, object]) -> str | None:
    external = source.get("external")
    api = external.get("api") if isinstance(external, dict) else None
    parts = str(api).split(".")
    return parts[1] if api and len(parts) == 3 else None


async def ensure_central(nc: NATS, plants: list[str]) -> None:
    """Create the central stream, or add the plants it does not source yet."""
    js = nc.jetstream()
    try:
        info = await js.stream_info(CENTRAL_STREAM)
    except NotFoundError:
        await js.add_stream(_central_config([plant_source(p) for p in plants]))
        return
    sources = list(info.config.sources or [])
    known = {s.external.api for s in sources if s.external}
    missing = [plant_source(p) for p in plants if api_prefix(p) not in known]
    if missing:
        info.config.sources = sources + missing
        await js.update_stream(info.config)


def _central_config(sources: list[StreamSource]) -> StreamConfig:
    # No subjects of its own: only the sources write here, so a plant's traffic that
    # crosses the leaf node live is never stored a second time.
    return StreamConfig(
        name=CENTRAL_STREAM,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=jetstream.MAX_AGE.total_seconds(),
        sources=sources,
    )


async def plant_lags(nc: NATS, timeout: float = 5.0) -> list[PlantLag]:
    """The source lag of every plant, from the central stream's info.

    Read raw: the client's StreamSourceInfo drops `external`, which names the plant.
    """
    reply = await nc.request(f"$JS.API.STREAM.INFO.{CENTRAL_STREAM}", b"", timeout=timeout)
    body = json.loads(reply.data)
    if "error" in body:
        raise NotFoundError(description=body["error"].get("description"))
    lags = []
    for source in body.get("sources") or []:
        plant = _plant_of(source)
        if plant is None:
            continue
        active = int(source.get("active", -1))
        error = source.get("error")
        lags.append(
            PlantLag(
                plant=plant,
                lag=int(source.get("lag", 0)),
                last_heard_s=active / 1e9 if active >= 0 else None,
                error=error.get("description") if isinstance(error, dict) else None,
            )
        )
    return sorted(lags, key=lambda lag: lag.plant)


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
    plant sequence the central stream holds: no gap, no duplicate.
    """
    stalled = [
        lag.plant
        for lag in await plant_lags(nc)
        if (lag.last_heard_s is None or lag.last_heard_s > stalled_s)
        and await plant_reachable(nc, lag.plant)
    ]
    if not stalled:
        return []
    js = nc.jetstream()
    config = (await js.stream_info(CENTRAL_STREAM)).config
    apis = {api_prefix(p) for p in stalled}
    keep = [s for s in config.sources or [] if not (s.external and s.external.api in apis)]
    config.sources = keep or None
    await js.update_stream(config)
    config.sources = keep + [plant_source(p) for p in stalled]
    await js.update_stream(config)
    return stalled
