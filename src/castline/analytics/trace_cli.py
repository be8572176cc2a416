"""`castline trace`: a part's whole history, by data-matrix code or by plant, machine and
shot number, as text or JSON."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from castline.options import ConfigOption, settings_or_exit


def trace(
    key: Annotated[
        list[str] | None, typer.Argument(help="PLANT MACHINE SHOT (or give --dmc).")
    ] = None,
    dmc: Annotated[str | None, typer.Option("--dmc", help="the part's data-matrix code.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
    config: ConfigOption = None,
) -> None:
    """A part's history: shot, curve features, envelope, photos and verdicts, alarms."""
    from castline.analytics.trace import TraceError, find, lines
    from castline.analytics.trace import trace as part_trace
    from castline.domain.shot import PartKey
    from castline.store import database
    from castline.store.blobs import BlobStore
    from castline.store.reads import Reads

    if (dmc is None) == (not key):
        raise typer.BadParameter("give either --dmc CODE or PLANT MACHINE SHOT")
    if key and (len(key) != 3 or not key[2].isdigit()):
        raise typer.BadParameter(f"PLANT MACHINE SHOT expected, got {' '.join(key)!r}")
    settings = settings_or_exit(config)
    engine = database.open_store(settings.db_url)
    try:
        part = find(Reads(engine), dmc) if dmc else PartKey(key[0], key[1], int(key[2]))  # type: ignore[index]
        result = part_trace(engine, part, BlobStore(settings.blobs))
    except TraceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
    else:
        typer.echo("\n".join(lines(result)))
