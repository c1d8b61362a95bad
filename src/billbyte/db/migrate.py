"""Alembic, driven from code: the migration scripts ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, inspect

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
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        if tables:
            raise DatabaseBehind(
                f"The database has tables ({', '.join(sorted(tables)[:3])}, ...) but no BillByte "
                f"schema revision; this BillByte needs {head}. Back it up, then run "
                "'billbyte migrate' (or point BILLBYTE_DATABASE_URL at an empty database)."
            )
        upgrade(engine)
        return "created"
    if not _known(engine, current):
        raise DatabaseBehind(
            f"The database is at schema revision {current}, which this BillByte does not know "
            f"(it needs {head}): was it written by a newer version?"
        )
    raise DatabaseBehind(
        f"The database is at schema revision {current}, this BillByte needs {head}. "
        "Back it up, then run 'billbyte migrate'."
    )


def _known(engine: Engine, revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_config(engine)).get_revision(revision) is not None
    except CommandError:
        return False
