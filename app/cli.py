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


def _add_run_embedded() -> None:
    # On the group itself, not on the app: FlaskGroup then finds it without building the app,
    # which `make run`'s supervisor never uses (its children build their own).
    from app.commands import run_embedded_command

    main.add_command(run_embedded_command)


_add_run_embedded()


def register_commands(app: Flask) -> None:
    from app.commands import accounts_commands, db_commands, demo_command

    app.cli.add_command(accounts_commands)
    app.cli.add_command(db_commands)
    app.cli.add_command(demo_command)
