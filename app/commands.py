"""CLI commands: `relais db upgrade|downgrade`, `relais demo`, `relais run-embedded`,
`relais accounts rotate-keys`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.group("db")
def db_commands() -> None:
    """Database schema (Alembic)."""


@db_commands.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the schema up (as MIGRATION_DATABASE_URL), then grant the run-time role (and
    the backup role, BACKUP_DATABASE_ROLE)."""
    from app import migrations

    cfg = current_app.config
    try:
        migrations.upgrade(
            cfg["MIGRATION_DATABASE_URL"],
            cfg["DATABASE_URL"],
            revision,
            backup_role=cfg.get("BACKUP_DATABASE_ROLE"),
        )
    except migrations.BackupRoleUnfit as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"database at {revision}")


@db_commands.command("downgrade")
@click.option("--revision", default="-1", show_default=True)
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Migrate the schema down."""
    from app import migrations

    migrations.downgrade(current_app.config["MIGRATION_DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Seed a demo agency with two brands and print a token to call the API with."""
    from app.services import demo

    seeded = demo.seed()
    base = current_app.config["API_BASE_URL"]
    click.echo(f"Demo agency {seeded.agency_id} — sign in as {demo.EMAIL} / {demo.PASSWORD}")
    for brand_id, name in seeded.brands:
        click.echo(f"  brand {brand_id}  {name}")
    click.echo("")
    click.echo(f"export TOKEN={seeded.access_token}")
    click.echo(f'curl -s {base}/v1/brands -H "Authorization: Bearer $TOKEN"')


@click.command("run-embedded")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int, envvar="PORT")
@click.option(
    "--web-workers",
    default=2,
    show_default=True,
    type=int,
    envvar="WEB_CONCURRENCY",
    help="gunicorn worker processes",
)
def run_embedded_command(host: str, port: int, web_workers: int) -> None:
    """API + worker + scheduler on SQLite and a Redis started here (the embedded default)."""
    from app.embedded import run

    raise SystemExit(run(host=host, port=port, web_workers=web_workers))


@click.group("accounts")
def accounts_commands() -> None:
    """Social accounts."""


@accounts_commands.command("rotate-keys")
@with_appcontext
def accounts_rotate_keys() -> None:
    """Re-encrypt every stored credential with the newest key of CREDENTIALS_ENCRYPTION_KEYS.

    Put the new key first, deploy, run this, then drop the old key.
    """
    from app.services import accounts

    counts = accounts.rotate_encryption_keys()
    for name, count in sorted(counts.items()):
        click.echo(f"{name}: {count}")
    click.echo("every stored credential is now encrypted with the newest key")
