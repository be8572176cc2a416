"""The `castline` command. Each area of the product brings its own sub-command group."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from castline import __version__
from castline.analytics.cli import import_app, report_app
from castline.line.cli import app as line_app
from castline.line.cli import up
from castline.messaging.cli import hub
from castline.settings import Settings, SettingsError, load
from castline.sim.cli import sim_app
from castline.vision.cli import app as vision_app
from castline.web.commands import app as web_app

app = typer.Typer(
    help="castline: trace every shot, inspect every casting, explain defects, prove the KPIs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The system of record: schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sim_app, name="sim")
app.add_typer(line_app, name="line")
app.command("up")(up)
app.command("hub")(hub)
app.add_typer(report_app, name="report")
app.add_typer(import_app, name="import")
app.add_typer(vision_app, name="vision")
app.add_typer(web_app)  # castline web, castline user ..., castline review export

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML settings file ([castline] table).")
]


def settings_or_exit(config: Path | None = None, **overrides: object) -> Settings:
    """Load settings for a command; bad settings end the command with what to fix."""
    try:
        return load(config, **overrides)
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print the castline version."""
    typer.echo(__version__)


@app.command()
def config(config: ConfigOption = None) -> None:
    """Show the effective settings (after file, environment and defaults)."""
    settings = settings_or_exit(config)
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if name == "secret_key" and value:
            value = "(set)"
        typer.echo(f"{name:20} = {value!s:30}  # {field.description}")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head", config: ConfigOption = None) -> None:
    """Create or upgrade the schema (to the newest revision by default)."""
    from castline.store import database

    settings = settings_or_exit(config)
    engine = database.connect(settings.db_url)
    database.upgrade(engine, revision)
    typer.echo(f"{engine.url.render_as_string(hide_password=True)}: at {database.current(engine)}")


@db_app.command("downgrade")
def db_downgrade(revision: str = "base", config: ConfigOption = None) -> None:
    """Downgrade the schema (to empty by default: drops castline's tables)."""
    from castline.store import database

    settings = settings_or_exit(config)
    engine = database.connect(settings.db_url)
    database.downgrade(engine, revision)
    typer.echo(f"{engine.url.render_as_string(hide_password=True)}: at {database.current(engine)}")


@db_app.command("current")
def db_current(config: ConfigOption = None) -> None:
    """Print the schema revision of the configured database."""
    from castline.store import database

    settings = settings_or_exit(config)
    typer.echo(database.current(database.connect(settings.db_url)) or "(empty)")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
