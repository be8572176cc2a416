"""Commands of the web area: `castline web`, `castline user ...`, `castline review export`.

Only typer is imported here; the application loads inside each command, so
`castline --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from castline.options import (
    ConfigOption,
    HostOption,
    NatsOption,
    PortOption,
    nats_url,
    settings_or_exit,
)

app = typer.Typer()
user_app = typer.Typer(help="Dashboard users and their API keys.", no_args_is_help=True)
review_app = typer.Typer(help="The review loop: labels from people.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(review_app, name="review")


@app.command()
def web(
    host: HostOption = None,
    port: PortOption = None,
    nats: NatsOption = None,
    config: ConfigOption = None,
) -> None:
    """Run the dashboard and API alone, on the configured store and the line's NATS."""
    import uvicorn

    from castline.messaging import devices
    from castline.store.database import open_store
    from castline.web.app import LineLink, create_app
    from castline.web.auth import INITIAL_PASSWORD_FILE, ensure_admin

    settings = settings_or_exit(config, http_host=host, http_port=port)
    engine = open_store(settings.db_url)
    password_file = settings.home / INITIAL_PASSWORD_FILE
    if ensure_admin(engine, settings.home) or password_file.exists():
        typer.echo(f"first login: user admin, password in {password_file} (then delete the file)")
    typer.echo(f"dashboard on http://{settings.http_host}:{settings.http_port}/")
    # the line's NATS: live tiles and backlog, wherever the line runs
    options = devices.home_options(settings.home, settings.tls)
    app = create_app(settings, engine, line=LineLink(nats or nats_url(settings), options))
    uvicorn.run(app, host=settings.http_host, port=settings.http_port)


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="viewer, operator, engineer or admin")] = "viewer",
    plant: Annotated[
        list[str] | None, typer.Option(help="plant this user may see (repeat; none: all)")
    ] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
    config: ConfigOption = None,
) -> None:
    """Add a user who logs in to the dashboard."""
    from castline.store.database import open_store
    from castline.web.auth import Role, add_user, audit

    if len(password) < 10:
        typer.echo("a password needs at least 10 characters", err=True)
        raise typer.Exit(2)
    engine = open_store(settings_or_exit(config).db_url)
    try:
        add_user(engine, name, password, Role.of(role), plant or [])
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    audit(engine, "cli", "user.add", name, {"role": role, "plants": plant or []})
    typer.echo(f"user {name} added as {role} for {', '.join(plant or []) or 'every plant'}")


@user_app.command("key")
def user_key(
    name: str,
    label: Annotated[str, typer.Option("--name", help="what the key is for")] = "",
    config: ConfigOption = None,
) -> None:
    """Create an API key for a user and print it once (castline keeps only its hash)."""
    from castline.store.database import open_store
    from castline.web.auth import audit, new_api_key

    engine = open_store(settings_or_exit(config).db_url)
    try:
        key = new_api_key(engine, name, label)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    audit(engine, "cli", "key.add", name, {"name": label})
    typer.echo(key)


@user_app.command("revoke")
def user_revoke(name: str, config: ConfigOption = None) -> None:
    """Revoke every API key of a user."""
    from castline.store.database import open_store
    from castline.web.auth import audit, revoke_keys

    engine = open_store(settings_or_exit(config).db_url)
    try:
        revoked = revoke_keys(engine, name)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    audit(engine, "cli", "key.revoke", name, {"keys": revoked})
    typer.echo(f"{revoked} key(s) of {name} revoked")


@user_app.command("list")
def user_list(config: ConfigOption = None) -> None:
    """List users, their roles, plants and API keys."""
    from castline.store.database import open_store
    from castline.web import queries

    for row in queries.users(open_store(settings_or_exit(config).db_url)):
        plants = ",".join(row["plants"]) or "all"
        typer.echo(f"{row['username']:20} {row['role']:9} plants={plants} keys={row['key_count']}")


@review_app.command("export")
def review_export(
    target: Annotated[Path, typer.Argument(help="folder to write OK/ and NG/ into")],
    plant: Annotated[list[str] | None, typer.Option(help="only this plant (repeat)")] = None,
    config: ConfigOption = None,
) -> None:
    """Copy the photos of reviewed parts into OK/ and NG/ folders, for retraining."""
    from castline.store.blobs import BlobStore
    from castline.store.database import open_store
    from castline.web.export import export_reviews

    settings = settings_or_exit(config)
    result = export_reviews(open_store(settings.db_url), BlobStore(settings.blobs), target, plant)
    typer.echo(f"{result.ok} OK and {result.ng} NG images in {target} (labels.csv lists them)")
    if result.missing:
        typer.echo(f"{result.missing} reviewed images were missing from the blob store", err=True)
