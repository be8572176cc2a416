"""The `castline` command. Each area brings its own sub-command group; the commands that
wire several areas together (`up`, `line broker`) live here, beside the composition root.

Layering: area CLIs import `castline.options`, never this module. A command's failure
ends in one line saying what to fix and exit code 2 (bad input) or 1 (runtime failure);
`castline --traceback COMMAND` shows the traceback instead. What it says is in English or
Chinese (`castline.cli_text`: `CASTLINE_LANG`, else the locale).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from castline import __version__
from castline.analytics.cli import import_app, report_app
from castline.analytics.trace_cli import trace
from castline.cli_text import language, say, translated
from castline.line.cli import app as line_app
from castline.line.envelope_cli import app as envelope_app
from castline.messaging.cli import hub_app
from castline.messaging.device_cli import device_app
from castline.options import (
    ConfigOption,
    HostOption,
    PortOption,
    UplinkOption,
    settings_or_exit,
)
from castline.settings import Settings, SettingsError
from castline.sim.cli import sim_app
from castline.vision.cli import app as vision_app
from castline.web.commands import app as web_app

BAD_INPUT, FAILED = 2, 1

# typer >= 0.16 ships its own copy of click: find its ClickException without naming either.
_CLICK_EXCEPTION: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)
_CONTROL: tuple[type[Exception], ...] = (_CLICK_EXCEPTION, typer.Exit, typer.Abort)


class _Commands(TyperGroup):
    """Runs a command and turns any error it raises into one line and an exit code; usage
    mistakes (an unknown option, a missing argument) in the user's language."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _CONTROL:
            raise
        except Exception as exc:
            if ctx.params.get("traceback"):
                raise
            code, message = explain(exc)
            typer.echo(say("error", message=translated(message)), err=True)
            raise typer.Exit(code) from None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone = kwargs.pop("standalone_mode", True)
        kwargs["standalone_mode"] = False  # click's usage errors come back here to be said
        if not standalone:
            return super().main(*args, **kwargs)
        try:
            outcome = super().main(*args, **kwargs)
        except _CLICK_EXCEPTION as exc:
            _show_usage_error(exc)
            sys.exit(getattr(exc, "exit_code", BAD_INPUT))
        except typer.Abort:
            typer.echo(say("aborted"), err=True)
            sys.exit(1)
        sys.exit(outcome if isinstance(outcome, int) else 0)  # an Exit's code, else 0


def _show_usage_error(exc: Exception) -> None:
    """As click shows it (usage, a hint, the error), in the user's language."""
    if language() == "en" or type(exc).__name__ == "NoArgsIsHelpError":  # that one is help
        exc.show()  # type: ignore[attr-defined]
        return
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        typer.echo(ctx.get_usage(), err=True)
        typer.echo(say("usage.try", command=ctx.command_path) + "\n", err=True)
    message = exc.format_message()  # type: ignore[attr-defined]
    typer.echo(say("usage.error", message=translated(message)), err=True)


def explain(exc: Exception) -> tuple[int, str]:
    """Exit code and a one-line message for an error a command let through."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from castline.messaging.broker import BrokerError

    if isinstance(exc, SettingsError):
        return BAD_INPUT, str(exc)
    if isinstance(exc, ArgumentError):
        return BAD_INPUT, say("db.bad_url", detail=_line(exc))
    if isinstance(exc, DBAPIError):
        return FAILED, say("db.unreachable", detail=_line(exc.orig or exc))
    if isinstance(exc, BrokerError):
        return FAILED, _line(exc)
    if isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError):
        return BAD_INPUT, say("file.missing", path=exc.filename, detail=exc.strerror or _line(exc))
    if isinstance(exc, PermissionError):
        return FAILED, say("file.denied", path=exc.filename)
    if isinstance(exc, ConnectionError | TimeoutError) or _is_nats(exc):
        return FAILED, say("connect.failed", detail=_line(exc))
    if isinstance(exc, OSError):
        return FAILED, _line(exc)
    if isinstance(exc, ValueError | LookupError):
        return BAD_INPUT, _line(exc)
    return FAILED, say("bug", kind=exc.__class__.__name__, detail=_line(exc))


def _line(exc: BaseException) -> str:
    """The first line of an error's text (drivers add hints and links below it)."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else exc.__class__.__name__


def _is_nats(exc: Exception) -> bool:
    return exc.__class__.__module__.startswith("nats.")


app = typer.Typer(
    cls=_Commands,
    help="castline: trace every shot, inspect every casting, explain defects, prove the KPIs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts name TOML tables like [castline]: print them as written
)
db_app = typer.Typer(
    help="The system of record: schema migrations, history partitions and retention.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(sim_app, name="sim")
app.add_typer(line_app, name="line")
app.add_typer(envelope_app, name="envelope")
app.add_typer(device_app, name="device")
app.add_typer(hub_app, name="hub")
app.add_typer(report_app, name="report")
app.add_typer(import_app, name="import")
app.command("trace")(trace)
app.add_typer(vision_app, name="vision")
app.add_typer(web_app)  # castline web, castline user ..., castline review export


@app.callback()
def castline(
    traceback: Annotated[
        bool, typer.Option("--traceback", help="on an error, show the full traceback.")
    ] = False,
) -> None:
    # the flag is read where errors are caught (_Commands.invoke)
    del traceback


@app.command()
def version() -> None:
    """Print the castline version."""
    typer.echo(__version__)


@app.command()
def config(config: ConfigOption = None) -> None:
    """Show the effective settings (after file, environment and defaults)."""
    settings = settings_or_exit(config)
    as_json = settings.model_dump(mode="json")
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if name == "secret_key" and value:
            value = "(set)"
        elif isinstance(value, tuple | list | dict):  # as CASTLINE_<NAME> takes it: JSON
            value = json.dumps(as_json[name], ensure_ascii=False, separators=(", ", ": "))
        typer.echo(f"{name:20} = {value!s:30}  # {field.description}")


@app.command()
def up(
    seconds: Annotated[
        float | None, typer.Option("--for", min=1, help="run this many seconds, then stop")
    ] = None,
    summary: Annotated[
        Path | None, typer.Option(help="write a JSON summary here at the end")
    ] = None,
    machines: Annotated[
        int | None, typer.Option(min=1, help="simulated machines (default: setting machines)")
    ] = None,
    speed: Annotated[
        float | None, typer.Option(help="simulator acceleration (default: setting speed)")
    ] = None,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 1,
    host: HostOption = None,
    port: PortOption = None,
    uplink: UplinkOption = None,
    config: ConfigOption = None,
) -> None:
    """Run everything: embedded broker, simulated hall, line runtime and web dashboard."""
    settings = settings_or_exit(
        config,
        machines=machines,
        speed=speed,
        uplink_url=uplink,
        http_host=host,
        http_port=port,
    )
    from castline import logs
    from castline.app import UpOptions, run  # heavy: after the settings are known good

    logs.setup()
    run(settings, UpOptions(duration_s=seconds, summary=summary, seed=seed))


@line_app.command("broker")
def line_broker(uplink: UplinkOption = None, config: ConfigOption = None) -> None:
    """Run the plant's NATS (JetStream + MQTT) alone, for `line run` workers and bridges."""
    from castline.app import plant_broker
    from castline.messaging.broker import BrokerError

    settings = settings_or_exit(config, uplink_url=uplink)
    server = plant_broker(settings)
    server.start()  # a BrokerError (port taken, no binary) ends here with its message
    typer.echo(say("broker.up", plant=settings.plant, nats=server.url, mqtt=server.mqtt_url))
    if settings.uplink_url:
        typer.echo(say("broker.uplink", uplink=settings.uplink_url))
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # after start: the server keeps them
    lost: list[str] = []

    def give_up(reason: str) -> None:  # from the supervisor's thread: end the sigwait below
        lost.append(reason)
        os.kill(os.getpid(), signal.SIGTERM)

    server.supervise(give_up)  # after the mask: its thread leaves the stop signals to sigwait
    try:
        signal.sigwait(stop_signals)
    finally:
        server.stop()
    if lost:
        raise BrokerError(lost[0])  # exit code 1 with the reason


@db_app.command("upgrade")
def db_upgrade(revision: str = "head", config: ConfigOption = None) -> None:
    """Create or upgrade the schema (to the newest revision by default)."""
    from castline.store import database

    settings = settings_or_exit(config)
    engine = database.connect(settings.db_url)
    database.upgrade(engine, revision)
    url = engine.url.render_as_string(hide_password=True)
    typer.echo(say("db.at", url=url, revision=database.current(engine)))


@db_app.command("downgrade")
def db_downgrade(revision: str = "base", config: ConfigOption = None) -> None:
    """Downgrade the schema (to empty by default: drops castline's tables)."""
    from castline.store import database

    settings = settings_or_exit(config)
    engine = database.connect(settings.db_url)
    database.downgrade(engine, revision)
    url = engine.url.render_as_string(hide_password=True)
    typer.echo(say("db.at", url=url, revision=database.current(engine)))


@db_app.command("current")
def db_current(config: ConfigOption = None) -> None:
    """Print the schema revision of the configured database."""
    from castline.store import database

    settings = settings_or_exit(config)
    typer.echo(database.current(database.connect(settings.db_url)) or say("db.empty"))


@db_app.command("history")
def db_history(
    days: Annotated[
        float | None,
        typer.Option(min=0, help="keep this many days; default: the setting shot_retention_days"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Make the partitions of the coming months, count the closed hours for the KPIs, and
    drop shots, machine states, their parts and their photo files older than the
    retention, by whole partitions on PostgreSQL (0: keep all)."""
    from castline.store import database, partitions
    from castline.store.blobs import BlobStore

    settings = settings_or_exit(config)
    keep = settings.shot_retention_days if days is None else days
    engine = database.open_store(settings.db_url)
    months, blobs = settings.history_partition_months, BlobStore(settings.blobs)
    gone = partitions.keep_history(engine, months, keep, blobs=blobs)
    if keep <= 0:
        typer.echo(say("db.history_kept"))
    else:
        typer.echo(
            say(
                "db.history_dropped",
                days=f"{keep:g}",
                partitions=gone["partitions"],
                shots=gone["shots"],
                states=gone["states"],
            )
        )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
