"""Engine and session factory, one per database URL per process."""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, open transactions (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (API, portal) proceed while an import writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # pysqlite does not put DDL in transactions and opens read transactions lazily; an
    # explicit BEGIN IMMEDIATE makes migrations atomic and avoids lock-upgrade failures
    # (SQLITE_BUSY_SNAPSHOT) between concurrent writers.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


SQLITE_FILE_MODE = 0o600


def _create_sqlite_file_private(url: str) -> None:
    """Create a missing SQLite database file owner-only before SQLite creates it with the
    process umask (typically world-readable). SQLite gives its -wal and -shm files the
    database file's permissions, so they follow."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():
        return  # an existing file is the operator's; a missing folder is SQLite's error
    with contextlib.suppress(FileExistsError):  # another process created it first
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SQLITE_FILE_MODE))


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _create_sqlite_file_private(url)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
