"""Alembic, driven from code: the migration scripts ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseBehind(Exception):
    """The database has an older schema than this code: run ``billbyte migrate``."""


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(_config(engine), revision)


def ensure_schema(engine: Engine) -> str:
    """Migrate an empty database; refuse one that has a schema behind ours.

    Returns what was done ("created" or "current").
    """
    current = current_revision(engine)
    head = head_revision(engine)
    if current == head:
        return "current"
    if current is None:
        upgrade(engine)
        return "created"
    raise DatabaseBehind(
        f"The database is at schema revision {current}, this BillByte needs {head}. "
        "Back it up, then run 'billbyte migrate'."
    )
