"""`castline envelope ...`: a die's golden envelope learnt anew on request, its versions,
and the shot curves' retention run by hand (the line runs it every hour)."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from castline.options import ConfigOption, settings_or_exit

app = typer.Typer(
    help="Golden envelopes of the dies and shot-curve retention.", no_args_is_help=True
)
Die = Annotated[str, typer.Argument(help="die code")]


@app.command("learn")
def learn(
    die: Die,
    shots: Annotated[int, typer.Option(min=20, max=5000, help="newest good shots used")] = 200,
    config: ConfigOption = None,
) -> None:
    """Learn the die's envelope anew from its newest good shots; the line loads it within
    seconds, and shots from then on are checked against it."""
    from castline.domain.envelope import EnvelopeError
    from castline.store.database import open_store
    from castline.store.envelopes import Envelopes

    settings = settings_or_exit(config)
    envelopes = Envelopes(open_store(settings.db_url))
    try:
        stored = envelopes.learn(die, f"asked by {getpass.getuser()}"[:80], shots=shots)
    except EnvelopeError as exc:
        typer.echo(f"error: die {die}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"die {die}: envelope v{stored.version} from {stored.envelope.shots} good shots")


@app.command("list")
def versions(die: Die, config: ConfigOption = None) -> None:
    """The die's envelope versions, newest first (learnt at, in UTC)."""
    from castline.store.database import open_store
    from castline.store.envelopes import Envelopes

    settings = settings_or_exit(config)
    found = Envelopes(open_store(settings.db_url)).history(die)
    if not found:
        typer.echo(f"die {die} has no envelope yet")
    for row in found:
        typer.echo(
            f"v{row['version']}  {row['learnt_at']:%Y-%m-%d %H:%M} UTC  {row['shots']} shots  "
            f"{row['rate_hz']} Hz  {row['reason']}"
        )


@app.command("prune")
def prune(
    days: Annotated[
        float | None, typer.Option(min=0, help="keep this many days; default: the setting")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Delete shot curves older than the retention (`curve_retention_days`); the shots
    and their curve features stay."""
    from castline.store.database import open_store
    from castline.store.envelopes import prune_curves

    settings = settings_or_exit(config)
    keep = settings.curve_retention_days if days is None else days
    gone = prune_curves(open_store(settings.db_url), datetime.now(UTC) - timedelta(days=keep))
    typer.echo(f"deleted {gone} shot curves older than {keep:g} days")
