"""Local state is owner-only: the SQLite database (and its WAL files), var_dir and the usage
store were created with the process umask, typically world-readable (0644 files, 0755 dirs),
on a machine where other users may log in."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import billbyte
from billbyte.db.engine import make_engine
from billbyte.db.migrate import upgrade
from billbyte.settings import Settings

PERMISSIVE_UMASK = 0o022  # the usual default: files 0644, directories 0755


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(PERMISSIVE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_the_sqlite_database_and_var_dir_are_owner_only(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", secret_key="k")
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM msps"))
            database = tmp_path / "var" / "billbyte.sqlite3"
            wal = database.with_name(database.name + "-wal")
            assert wal.exists()  # WAL mode: written while a connection is open
            assert mode(wal) == 0o600
        assert mode(tmp_path / "var") == 0o700
        assert mode(database) == 0o600
    finally:
        engine.dispose()


@pytest.mark.usefixtures("permissive_umask")
def test_the_usage_store_is_owner_only(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", secret_key="k")
    store = settings.usage_store_dir
    assert mode(tmp_path / "var") == 0o700
    assert mode(store) == 0o700


@pytest.mark.usefixtures("permissive_umask")
def test_an_existing_database_file_is_left_as_the_operator_made_it(tmp_path: Path) -> None:
    database = tmp_path / "shared.sqlite3"
    database.touch(mode=0o640)
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert mode(database) == 0o640


def test_a_billbyte_process_creates_every_file_owner_only(tmp_path: Path) -> None:
    """The CLI entry point (serve, worker, every command) sets umask 077, so files written by
    other modules (usage slices, uploads, exports, PDFs) are 0600 and folders 0700 too."""
    probe = tmp_path / "written-after-startup"
    script = (
        "import os, sys\n"
        "from billbyte.cli import main\n"
        "sys.argv = ['billbyte', 'migrate']\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        f"    open({str(probe)!r}, 'w').close()\n"
        f"    os.mkdir({str(probe) + '-dir'!r})\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(billbyte.__file__).parents[1]),
        "BILLBYTE_VAR_DIR": str(tmp_path / "var"),
        "BILLBYTE_SECRET_KEY": "k",
    }
    env.pop("BILLBYTE_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(PERMISSIVE_UMASK),
    )
    assert result.returncode == 0, result.stderr
    assert mode(probe) == 0o600
    assert mode(Path(str(probe) + "-dir")) == 0o700
    assert mode(tmp_path / "var" / "billbyte.sqlite3") == 0o600
