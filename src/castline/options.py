"""Options the `castline` commands share, and the settings they fall back to.

This module sits at the bottom of the command layering: it imports only typer,
`castline.settings` and `castline.cli_text` (what commands say, in English or Chinese), so
every area's CLI can use it and none needs `castline.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from castline.cli_text import translated
from castline.settings import Settings, SettingsError, check_nats_urls, load

# Help texts are printed without rich markup (see castline.cli), so [castline] shows as typed.
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML settings file ([castline] table); default: CASTLINE_CONFIG, else none.",
    ),
]


def _nats(value: str | None) -> str | None:
    try:
        return None if value is None else check_nats_urls(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


NatsOption = Annotated[
    str | None,
    typer.Option(
        "--nats",
        callback=_nats,
        help="NATS server with JetStream (default: setting nats_url, else the embedded "
        "broker at nats://127.0.0.1:<nats_port>).",
    ),
]
UplinkOption = Annotated[
    str | None,
    typer.Option(
        callback=_nats,
        help="central hub's leafnode URL, nats://HOST:PORT (see `castline hub`).",
    ),
]
HostOption = Annotated[
    str | None, typer.Option(help="address the dashboard binds (default: setting http_host).")
]
PortOption = Annotated[
    int | None,
    typer.Option(min=1, max=65535, help="dashboard port (default: setting http_port)."),
]


def settings_or_exit(config: Path | None = None, **overrides: object) -> Settings:
    """Settings for a command; options left out (None) fall back to file, environment and
    defaults. Bad settings end the command with what to fix and exit code 2."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return load(config, **given)
    except SettingsError as exc:
        typer.echo(translated(str(exc)), err=True)
        raise typer.Exit(2) from None


def nats_url(settings: Settings) -> str:
    """The plant's NATS: the configured server, else the embedded one `castline up` or
    `castline line broker` starts."""
    return settings.nats_url or f"nats://127.0.0.1:{settings.nats_port}"


def mqtt_url(settings: Settings) -> str:
    """The MQTT listener of the embedded broker, where simulated devices publish."""
    return f"mqtt://127.0.0.1:{settings.mqtt_port}"
