"""Alembic, driven from code: the migration scripts ship inside the package.

Features may add migrations in parallel (several heads); upgrading goes to all heads.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseBehind(Exception):
    """The database has an older schema than this code: run ``billbyte migrate``."""


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revisions(engine: Engine) -> set[str]:
    return set(ScriptDirectory.from_config(_config(engine)).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: Engine, revision: str = "heads") -> None:
    command.upgrade(_config(engine), revision)


def ensure_schema(engine: Engine) -> str:
    """Migrate an empty database; refuse one that has a schema behind ours.

    Returns what was done ("created" or "current").
    """
    current = current_revisions(engine)
    heads = head_revisions(engine)
    if current == heads:
        return "current"
    if not current:
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        if tables:  # not empty, yet not stamped: refuse rather than fail half-way
            raise DatabaseBehind(
                f"The database has tables ({', '.join(sorted(tables)[:3])}, ...) but no "
                f"BillByte schema revision; this BillByte needs {', '.join(sorted(heads))}. "
                "Point BILLBYTE_DATABASE_URL at an empty database, or back it up and run "
                "'billbyte migrate'."
            )
        upgrade(engine)
        return "created"
    raise DatabaseBehind(
        f"The database is at schema revision {', '.join(sorted(current))}, this BillByte "
        f"needs {', '.join(sorted(heads))}. Back it up, then run 'billbyte migrate'."
    )
