"""The `relais` command: a Flask CLI group bound to `create_app`, plus our own commands."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def _create_app() -> Flask:
    from app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app)
def main() -> None:
    """Relais: the backend for community-management agencies."""


def _add_process_commands() -> None:
    # On the group itself, not on the app: FlaskGroup then finds them without building the app.
    # `make run`'s supervisor never uses one (its children build their own); the worker builds
    # its own once, its way (workers/worker.py); the cron builds none.
    from app.commands import cron_command, run_embedded_command, worker_command

    main.add_command(run_embedded_command)
    main.add_command(worker_command)
    main.add_command(cron_command)


_add_process_commands()


def register_commands(app: Flask) -> None:
    from app.commands import accounts_commands, db_commands, demo_command

    app.cli.add_command(accounts_commands)
    app.cli.add_command(db_commands)
    app.cli.add_command(demo_command)
