"""The `castline` command as a user meets it: help, options that fall back to the settings,
and errors that are one line with an exit code, never a traceback."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import castline
from castline.cli import app, explain
from castline.messaging.broker import BrokerError, free_port
from castline.options import mqtt_url, nats_url
from castline.settings import load

runner = CliRunner()
PACKAGE = Path(castline.__file__).parent
# Commands that read no setting: they work on the files they are given.
NO_SETTINGS = {"version", "vision train", "vision eval", "vision inspect"}


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("CASTLINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CASTLINE_LANG", "en")  # these tests read the English messages


def commands(group: Any = None, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every runnable command path, e.g. ("report", "kpi"); groups with a callback too."""
    group = group or get_command(app)
    for name, command in group.commands.items():
        path = (*prefix, name)
        sub = getattr(command, "commands", None)
        if not sub or getattr(command, "invoke_without_command", False):
            yield path
        if sub:
            yield from commands(command, path)


def castline_bin() -> Path:
    script = Path(sys.executable).parent / "castline"
    assert script.is_file(), f"the castline entry point is not installed next to {sys.executable}"
    return script


def run_castline(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed entry point, as a user runs it (main() and all)."""
    return subprocess.run(
        [str(castline_bin()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def one_line_error(result: Any) -> str:
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr + result.stdout
    assert len(err.splitlines()) == 1, err
    return str(err)


def test_every_command_has_help_that_names_the_castline_table() -> None:
    found = list(commands())
    assert ("up",) in found and ("line", "run") in found and ("sim",) in found
    for path in found:
        result = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        if " ".join(path) not in NO_SETTINGS:
            assert "--config" in result.output, path
            assert "[castline] table" in result.output, path


def test_up_and_web_take_host_and_port() -> None:
    for command in ("up", "web"):
        shown = runner.invoke(app, [command, "--help"]).output
        assert "--port" in shown and "--host" in shown
    out_of_range = runner.invoke(app, ["up", "--port", "70000"])
    assert out_of_range.exit_code == 2 and "--port" in out_of_range.output
    for command in (["line", "run"], ["line", "bridge", "mqtt://h:1883"], ["web"]):
        wrong = runner.invoke(app, [*command, "--nats", "broker-host"])
        assert wrong.exit_code == 2 and "is no NATS server URL" in wrong.output, command
    away = runner.invoke(app, ["line", "parked", "--nats", f"nats://127.0.0.1:{free_port()}"])
    assert away.exit_code == 1 and "cannot reach NATS" in away.output, away.output
    bad_endpoint = runner.invoke(app, ["line", "opcua", "machine7:4840"])
    assert bad_endpoint.exit_code == 2 and "opc.tcp://host:4840" in bad_endpoint.output
    for seconds in ("-5", "0"):  # no line that ends before it starts
        no_time = runner.invoke(app, ["up", "--for", seconds])
        assert no_time.exit_code == 2 and "--for" in no_time.output, no_time.output
    # the option parses and the command reaches its settings (which stop it here)
    parsed = runner.invoke(app, ["up", "--port", "9090", "--config", "missing.toml"])
    assert parsed.exit_code == 2 and "No such option" not in parsed.output
    assert "missing.toml not found" in parsed.output


def test_the_sim_takes_plant_and_broker_from_the_settings(tmp_path: Path) -> None:
    env = {"CASTLINE_PLANT": "north", "CASTLINE_MQTT_PORT": "12883", "CASTLINE_MACHINES": "3"}
    shown = runner.invoke(app, ["sim", "--dry-run"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "plant north: 3 machines at 60x" in shown.output
    assert "broker mqtt://127.0.0.1:12883" in shown.output
    given = runner.invoke(app, ["sim", "--dry-run", "--plant", "south", "--machines", "2"], env=env)
    assert "plant south: 2 machines" in given.output
    config = tmp_path / "plant.toml"
    config.write_text('[castline]\nplant = "east"\nspeed = 120.0\n')
    from_file = runner.invoke(app, ["sim", "--dry-run", "--config", str(config)])
    assert "plant east: 9 machines at 120x" in from_file.output
    bad = runner.invoke(app, ["sim", "--dry-run", "--broker", "http://x"])
    assert bad.exit_code == 2 and "mqtt://host:1883" in bad.output


def test_castline_config_shows_the_environment() -> None:
    shown = runner.invoke(app, ["config"], env={"CASTLINE_PLANT": "north"})
    assert shown.exit_code == 0 and "plant                = north" in shown.output


def test_nats_falls_back_to_the_settings() -> None:
    assert nats_url(load(nats_port=15222)) == "nats://127.0.0.1:15222"
    assert nats_url(load(nats_url="nats://hub:4222")) == "nats://hub:4222"
    assert mqtt_url(load(mqtt_port=11884)) == "mqtt://127.0.0.1:11884"
    for command in (["line", "run"], ["line", "bridge"], ["line", "opcua"]):
        shown = runner.invoke(app, [*command, "--help"]).output
        assert "14222" not in shown and "<nats_port>" in shown


def test_a_database_that_does_not_answer_is_one_line_and_exit_1() -> None:
    result = run_castline("db", "current", CASTLINE_DATABASE_URL="postgresql://x@127.0.0.1:1/x")
    assert result.returncode == 1
    assert one_line_error(result).startswith("error: cannot use the database: connection")


def test_a_malformed_database_url_names_the_setting() -> None:
    for url in ("postgresql+nodriver://x/y", "postgresql://x:notaport/y"):
        result = run_castline("report", "alarms", CASTLINE_DATABASE_URL=url)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "setting CASTLINE_DATABASE_URL: not a usable SQLAlchemy URL" in result.stderr


def test_a_missing_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    model = str(tmp_path / "no-model")
    inspect = run_castline("vision", "inspect", model, str(tmp_path / "photo.jpeg"))
    expected = f"error: no model at {model}: train one with `castline vision train`"
    assert inspect.returncode == 2 and one_line_error(inspect) == expected
    evaluate = runner.invoke(
        app, ["vision", "eval", model, "--ok", "a", "--ng", "b", "--json", "m.json"]
    )
    assert evaluate.exit_code == 2 and expected in evaluate.output


def test_traceback_flag_shows_the_error_itself(tmp_path: Path) -> None:
    model = str(tmp_path / "no-model")
    result = runner.invoke(app, ["--traceback", "vision", "inspect", model, "x.jpeg"])
    assert result.exit_code == 1 and type(result.exception).__name__ == "ModelError"


def test_a_toml_without_the_castline_table_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "plant.toml"
    config.write_text('plant = "north"\n')
    result = run_castline("config", "--config", str(config))
    expected = f"{config}: no [castline] table; put the settings under a line [castline]"
    assert result.returncode == 2 and one_line_error(result) == expected


def test_errors_map_to_exit_codes() -> None:
    assert explain(PermissionError(13, "Permission denied", "/etc/x"))[0] == 1
    assert "/etc/x: permission denied" in explain(PermissionError(13, "x", "/etc/x"))[1]
    assert explain(FileNotFoundError(2, "No such file or directory", "a.csv")) == (
        2,
        "a.csv: No such file or directory",
    )
    assert explain(BrokerError("port 14222 is taken\nby pid 7")) == (1, "port 14222 is taken")
    assert explain(ValueError("bad value")) == (2, "bad value")
    code, message = explain(RuntimeError("odd"))
    assert code == 1 and message.startswith("RuntimeError: odd") and "--traceback" in message


def test_control_exceptions_pass_through() -> None:
    bad = runner.invoke(app, ["sim", "--fault", "lightning", "--dry-run"])
    assert bad.exit_code == 2 and "Invalid value for --fault" in bad.output
    asked = runner.invoke(app, ["user", "add", "olga", "--password", "short"])
    assert asked.exit_code == 2 and "at least 10 characters" in asked.output


def imports_of(path: Path) -> Iterator[str]:
    """Every module a file imports, at the top or inside functions."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_no_area_imports_the_top_command() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in PACKAGE.glob("*/**/*.py")
        for name in imports_of(path)
        if name == "castline.cli" or name.startswith("castline.cli.")
    ]
    assert offenders == []


def test_options_module_sits_at_the_bottom() -> None:
    ours = {n for n in imports_of(PACKAGE / "options.py") if n.startswith("castline")}
    assert ours == {"castline.settings", "castline.cli_text"}


def test_the_sim_logs_in_to_the_embedded_broker_by_default(tmp_path: Path) -> None:
    """With no --broker, the sim reaches the settings' embedded broker, which admits only
    the users of the home's credentials, as `castline line broker` starts it."""
    from castline.messaging import devices
    from castline.messaging.broker import EmbeddedNats
    from castline.sim.fleet import FleetConfig

    settings = load(home=tmp_path / "home", nats_port=free_port(), mqtt_port=free_port())
    env = {
        "CASTLINE_HOME": str(settings.home),
        "CASTLINE_NATS_PORT": str(settings.nats_port),
        "CASTLINE_MQTT_PORT": str(settings.mqtt_port),
    }
    machines = FleetConfig(machines=2).machine_ids()
    registry = devices.provision(settings.home, settings.plant, machines)
    broker = EmbeddedNats(
        settings.home / "nats",
        settings.nats_port,
        settings.mqtt_port,
        authorization=registry.authorization(),
    )
    broker.start()
    try:
        args = ["sim", "--machines", "2", "--speed", "600", "--duration", "1.5"]
        result = runner.invoke(app, [*args, "--data", str(tmp_path / "none")], env=env)
    finally:
        broker.stop()
    assert result.exit_code == 0, result.output
    assert "robot cells:" in result.output and "new device logins" not in result.output
