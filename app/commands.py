"""CLI commands: `relais db upgrade|downgrade`, `relais demo`, `relais run-embedded`,
`relais worker`, `relais cron`, `relais accounts rotate-keys`.

Commands that can hurt say so before they act: `db downgrade` asks (or takes `--yes`), `demo`
refuses a production database, and every failure ends in a sentence naming what to change,
never a traceback.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from app.queue import ALL_QUEUES

# PostgreSQL's SQLSTATE for "permission denied" and "must be owner of …".
_INSUFFICIENT_PRIVILEGE = "42501"


@click.group("db")
def db_commands() -> None:
    """Database schema (Alembic)."""


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _migration_failure(exc: DBAPIError) -> click.ClickException:
    """What a failed migration means, for the operator (no SQL, no traceback, no password)."""
    cfg = current_app.config
    url = cfg["MIGRATION_DATABASE_URL"]
    reason = (str(exc.orig) if exc.orig is not None else str(exc)).strip().splitlines()[0]
    role = make_url(url).username or "the default user"
    if cfg["MIGRATION_DATABASE_URL"] == cfg["DATABASE_URL"]:
        as_whom = (
            f"It ran as {role!r} from DATABASE_URL, because MIGRATION_DATABASE_URL is not set."
        )
    else:
        as_whom = f"It ran as {role!r} from MIGRATION_DATABASE_URL ({_shown(url)})."
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code == _INSUFFICIENT_PRIVILEGE:
        return click.ClickException(
            f"the migration was refused: {reason}. Migrations run as the owner of the tables: "
            "set MIGRATION_DATABASE_URL to the owner's URL (e.g. "
            "postgresql://relais_owner:…@db/relais) and keep DATABASE_URL for the run-time role. "
            + as_whom
        )
    return click.ClickException(
        f"the migration failed: {reason}. {as_whom} MIGRATION_DATABASE_URL must reach the "
        "database as the owner of its tables."
    )


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
    except DBAPIError as exc:
        raise _migration_failure(exc) from None
    reached = migrations.current_revision(cfg["MIGRATION_DATABASE_URL"])
    click.echo(f"database at {migrations.describe(reached)}")


@db_commands.command("downgrade")
@click.option("--revision", default="-1", show_default=True, help="target, or -N steps back")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@with_appcontext
def db_downgrade(revision: str, yes: bool) -> None:
    """Migrate the schema down. What later migrations added is dropped, with its data."""
    from app import migrations

    url = current_app.config["MIGRATION_DATABASE_URL"]
    try:
        current = migrations.current_revision(url)
    except DBAPIError as exc:
        raise _migration_failure(exc) from None
    if current is None:
        raise click.ClickException(f"{_shown(url)} has no migration applied: nothing to undo")
    if not yes:
        click.confirm(
            f"Downgrade {_shown(url)} from {migrations.describe(current)} to "
            f"{migrations.describe(migrations.downgrade_target(current, revision))}? "
            "Tables and columns added by the later migrations are dropped with their data",
            abort=True,
        )
    try:
        migrations.downgrade(url, revision)
    except DBAPIError as exc:
        raise _migration_failure(exc) from None
    click.echo(f"database at {migrations.describe(migrations.current_revision(url))}")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Seed a demo agency with two brands and print a token to call the API with."""
    from app.embedded import running_instance
    from app.services import demo

    if current_app.config.get("ENV") == "production":
        raise click.ClickException(
            f"relais demo creates a user with a published password ({demo.EMAIL} / "
            f"{demo.PASSWORD}): it refuses to run with RELAIS_ENV=production"
        )
    seeded = demo.seed()
    # The curl goes to the `make run` of this checkout, wherever it listens.
    running = running_instance()
    base = running["url"] if running else current_app.config["API_BASE_URL"]
    click.echo(f"Demo agency {seeded.agency_id} — sign in as {demo.EMAIL} / {demo.PASSWORD}")
    for brand_id, name in seeded.brands:
        click.echo(f"  brand {brand_id}  {name}")
    click.echo("")
    if not running:
        click.echo(f"(no `make run` is running from this checkout; the API is expected at {base})")
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


# -- the background processes -------------------------------------------------------------------
# Declared here, run by `workers/`: the command imports its side of the line when it runs (as
# rq's own CLI imports a worker class by name), so the app never imports `workers` otherwise.


@click.command("worker")
@click.argument("queues", nargs=-1, type=click.Choice(ALL_QUEUES))
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.option(
    "--with-scheduler/--without-scheduler",
    default=True,
    show_default=True,
    help="Also move jobs whose time has come (retries, enqueue_at) onto their queue; "
    "the workers share this duty, one at a time.",
)
@click.option("--max-jobs", type=int, help="Exit after this many jobs.")
@click.option("--name", help="The worker's name in Redis (default: host, pid, random).")
def worker_command(
    queues: tuple[str, ...], burst: bool, with_scheduler: bool, max_jobs: int | None, name: str
) -> None:
    """An RQ worker on the configured Redis (REDIS_URL), on every queue (or those named), most
    urgent first. The application is built once, before jobs are forked. Run any number."""
    from workers.worker import run

    run(queues, burst=burst, with_scheduler=with_scheduler, max_jobs=max_jobs, name=name)


@click.command("cron")
def cron_command() -> None:
    """The periodic jobs of workers/schedule.py, enqueued on the configured Redis. One leads at
    a time: a second one stands by and takes over if the first stops."""
    from workers.cron import run

    run()


@click.group("accounts")
def accounts_commands() -> None:
    """Social accounts."""


@accounts_commands.command("rotate-keys")
@with_appcontext
def accounts_rotate_keys() -> None:
    """Re-encrypt every stored credential with the newest key of CREDENTIALS_ENCRYPTION_KEYS.

    Put the new key first, deploy, run this, then drop the old key. Rows no configured key
    decrypts are listed and left as they are; the command then exits with status 1.
    """
    from app.services import key_rotation

    rotation = key_rotation.rotate_encryption_keys()
    for name, count in sorted(rotation.counts.items()):
        click.echo(f"{name}: {count}")
    if rotation.unreadable:
        for table, row_id in rotation.unreadable:
            click.echo(f"unreadable: {table} {row_id}", err=True)
        raise click.ClickException(
            f"{len(rotation.unreadable)} row(s) could not be decrypted by any key of "
            "CREDENTIALS_ENCRYPTION_KEYS and were left as they are (listed above); every other "
            "row is now encrypted with the newest key. Add the key they were encrypted with "
            "and run this again before dropping any key"
        )
    click.echo("every stored credential is now encrypted with the newest key")
