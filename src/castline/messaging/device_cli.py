"""`castline device ...`: the machines that may log in to castline's broker.

A device's password is shown once, when it is added; the broker keeps only its bcrypt
hash. A running embedded broker of the same home takes the change at once (SIGHUP);
otherwise it applies when `castline up` or `castline line broker` next starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from castline.messaging.devices import (
    Account,
    Registry,
    Role,
    device_user,
    permissions,
)
from castline.options import ConfigOption, settings_or_exit

device_app = typer.Typer(
    help="Devices that log in to castline's broker (MQTT): add, list, remove.",
    no_args_is_help=True,
)

PlantOption = Annotated[str | None, typer.Option(help="plant id (default: setting plant)")]


def _home_and_plant(config: Path | None, plant: str | None) -> tuple[Path, str]:
    settings = settings_or_exit(config, plant=plant)  # checks the plant id too
    return settings.home, settings.plant


def _reload(home: Path, registry: Registry) -> str:
    from castline.messaging.broker import signal_reload

    pid = signal_reload(home / "nats", registry.authorization())
    if pid is None:
        return "no embedded broker of this home runs: it applies when one starts"
    return f"the running broker (pid {pid}) has it now"


@device_app.command("add")
def add(
    machine: Annotated[str, typer.Argument(help="machine id, as in its topics")],
    plant: PlantOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a machine (or give it a new password): prints its MQTT login once."""
    home, plant_id = _home_and_plant(config, plant)
    try:
        device_user(plant_id, machine)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    registry = Registry.load(home)
    renewed = device_user(plant_id, machine) in registry.accounts
    login = registry.add_device(plant_id, machine)
    typer.echo(f"MQTT username: {login.user}")
    typer.echo(f"MQTT password: {login.password}")
    typer.echo(
        "This password is shown only now; castline keeps its hash."
        + (" The machine's old password no longer works." if renewed else "")
    )
    typer.echo(f"It may publish castline/v1/{plant_id}/{machine}/... and read its verdicts.")
    typer.echo(_reload(home, registry))


@device_app.command("list")
def list_devices(config: ConfigOption = None) -> None:
    """Every user of the broker: role, and what it may publish and read."""
    home, _ = _home_and_plant(config, None)
    for account in Registry.load(home).users():
        typer.echo(_describe(account))


def _describe(account: Account) -> str:
    rules = permissions(account)
    deny = f" except {', '.join(rules.publish_deny)}" if rules.publish_deny else ""
    return (
        f"{account.user:32} {account.role.value:7} publish {', '.join(rules.publish_allow)}"
        f"{deny}; read {', '.join(rules.subscribe_allow)}"
    )


@device_app.command("remove")
def remove(
    machine: Annotated[str, typer.Argument(help="machine id")],
    plant: PlantOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a machine: it can no longer log in (a connected one is cut off)."""
    home, plant_id = _home_and_plant(config, plant)
    registry = Registry.load(home)
    user = device_user(plant_id, machine)
    account = registry.accounts.get(user)
    if account is None or account.role is not Role.DEVICE:
        typer.echo(f"no device {user!r}; see `castline device list`", err=True)
        raise typer.Exit(1)
    registry.remove(user)
    typer.echo(f"removed {user}; {_reload(home, registry)}")


@device_app.command("bridge")
def bridge_login(config: ConfigOption = None) -> None:
    """The NATS login of `castline line bridge` (made on first use): devices in, verdicts
    out, nothing else."""
    settings = settings_or_exit(config)
    registry = Registry.load(settings.home)
    known = Role.BRIDGE.value in registry.accounts
    login = registry.service(Role.BRIDGE, settings.plant)
    typer.echo(f"NATS user: {login.user}")
    typer.echo(f"NATS password: {login.password}")
    typer.echo(
        "castline line bridge mqtt://PLANT-BROKER:1883 --nats "
        f"nats://{login.user}:<password>@HOST:{settings.nats_port}"
    )
    if not known:
        typer.echo(_reload(settings.home, registry))
