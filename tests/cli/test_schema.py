"""``serve``'s schema check: migrate an empty database, refuse one that is behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import uvicorn
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

import billbyte.models  # noqa: F401  (every table, as migrations/env.py sees them)
from billbyte.db.base import Base
from billbyte.db.migrate import (
    MIGRATIONS,
    DatabaseBehind,
    current_revisions,
    ensure_schema,
    head_revisions,
    upgrade,
)
from tests.cli.conftest import Cli


@pytest.fixture
def engine(cli: Cli) -> Iterator[Engine]:
    engine = cli.engine()
    yield engine
    engine.dispose()


def _older_than_head() -> str | None:
    """A real revision that is an ancestor of every head, if the history has one."""
    script = ScriptDirectory(str(MIGRATIONS))
    heads = script.get_heads()
    ancestors = [
        {rev.revision for rev in script.iterate_revisions(head, "base")} - {head} for head in heads
    ]
    common = set.intersection(*ancestors) if ancestors else set()
    # the newest common ancestor: the one with the most ancestors of its own
    return max(
        common,
        key=lambda rev: len(list(script.iterate_revisions(rev, "base"))),
        default=None,
    )


def test_an_empty_database_is_created_then_current(engine: Engine) -> None:
    assert current_revisions(engine) == set()
    assert ensure_schema(engine) == "created"
    assert current_revisions(engine) == head_revisions(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM msps")).scalar_one() == 0
    assert ensure_schema(engine) == "current"


def test_the_migrations_build_exactly_the_models_tables(engine: Engine) -> None:
    """A model changed without its migration (or the reverse) shows up here, on SQLite and
    on PostgreSQL, before an operator's ``billbyte migrate`` meets it."""
    upgrade(engine)
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert drift == []


def test_a_database_behind_is_refused(engine: Engine) -> None:
    older = _older_than_head()
    if older is None:
        pytest.skip("the migration history has a single revision: nothing can be behind yet")
    upgrade(engine, older)
    with pytest.raises(DatabaseBehind, match="billbyte migrate") as behind:
        ensure_schema(engine)
    assert older in str(behind.value)
    assert current_revisions(engine) == {older}  # refused, not half-migrated
    upgrade(engine)  # what 'billbyte migrate' does
    assert ensure_schema(engine) == "current"


def test_a_database_at_an_unknown_revision_is_refused(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('0000older')"))
    with pytest.raises(DatabaseBehind, match="0000older"):
        ensure_schema(engine)


def test_tables_without_a_revision_are_refused_not_half_migrated(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:  # as if stamped 'base' with the tables still there
        connection.execute(text("DELETE FROM alembic_version"))
    assert current_revisions(engine) == set()
    with pytest.raises(DatabaseBehind, match=r"has tables .*api_keys"):
        ensure_schema(engine)


def test_a_database_of_another_application_is_refused(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices_of_someone_else (id INTEGER)"))
    with pytest.raises(DatabaseBehind, match="invoices_of_someone_else"):
        ensure_schema(engine)
    assert current_revisions(engine) == set()


def test_an_empty_version_table_counts_as_empty(engine: Engine) -> None:
    with engine.begin() as connection:  # what 'alembic downgrade base' leaves behind
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
    assert ensure_schema(engine) == "created"
    assert current_revisions(engine) == head_revisions(engine)


def test_serve_refuses_a_database_behind_with_one_line(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, **kw: started.append(server))
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('0000older')"))
    result = cli.run("serve")
    assert result.exit_code != 0
    assert started == []  # the server never started
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "0000older" in lines[0]
    assert "Traceback" not in result.stderr
