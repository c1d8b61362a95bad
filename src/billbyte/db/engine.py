"""Engine and session factory, one per database URL per process.

Transactions come in two kinds on SQLite: writers start with ``BEGIN IMMEDIATE`` (they take
the write lock up front, so two writers never deadlock on a lock upgrade), readers with a
plain deferred ``BEGIN``: in WAL mode a reader reads its snapshot and never waits for a
writer. A connection is a reader when it carries the ``READ_ONLY`` execution option (see
``UnitOfWork(read_only=True)`` and ``read_only_engine``).

Every open transaction is also noted, with the thread that opened it, so that code which
must not run inside one (vendor calls: see ``assert_no_open_transaction``) can check.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

READ_ONLY = "billbyte_read_only"
NO_WAIT = "billbyte_no_wait"  # a writer that gives up at once if the write lock is taken
BUSY_TIMEOUT_MS = 30000

# id(Connection) → the thread that began its transaction. A dict guarded by a lock rather than
# a thread-local: FastAPI may close a request's session on another thread than opened it.
_open_transactions: dict[int, int] = {}
_open_lock = threading.Lock()


class TransactionOpen(RuntimeError):
    """A vendor (or other slow outside) call was made while this thread holds a database
    transaction: on SQLite that transaction may hold the write lock for the whole call."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, open transactions (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (API, portal) proceed while an import writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    if connection.get_execution_options().get(READ_ONLY):
        # A WAL reader: sees the last committed snapshot, never waits for the writer.
        connection.exec_driver_sql("BEGIN")
        return
    # pysqlite does not put DDL in transactions and opens read transactions lazily; an
    # explicit BEGIN IMMEDIATE makes migrations atomic and avoids lock-upgrade failures
    # (SQLITE_BUSY_SNAPSHOT) between concurrent writers.
    if not connection.get_execution_options().get(NO_WAIT):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    # Best-effort bookkeeping (e.g. an API key's last use) must not make a reader wait.
    connection.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _note_begin(connection: Any) -> None:
    with _open_lock:
        _open_transactions[id(connection)] = threading.get_ident()


def _note_end(connection: Any) -> None:
    with _open_lock:
        _open_transactions.pop(id(connection), None)


def _track(engine: Engine) -> None:
    event.listen(engine, "begin", _note_begin)
    event.listen(engine, "commit", _note_end)
    event.listen(engine, "rollback", _note_end)


def transaction_open_in_this_thread() -> bool:
    me = threading.get_ident()
    with _open_lock:
        return me in _open_transactions.values()


def assert_no_open_transaction(what: str) -> None:
    """Fail ``what`` (a vendor call) if this thread has a database transaction open.

    Cheap enough to run on every call in production: one dict scan under a lock."""
    if transaction_open_in_this_thread():
        raise TransactionOpen(
            f"{what} was called inside an open database transaction: read what is needed, "
            "commit, call outside any unit of work, then record the outcome in a new one."
        )


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


@dataclass(frozen=True)
class PoolOptions:
    """The connection pool of a PostgreSQL engine (``BILLBYTE_DB_POOL_*``, see
    docs/operations.md#connection-pooling). SQLite keeps SQLAlchemy's own pool: its
    connections are files, not servers."""

    size: int = 10  # connections kept open per process
    max_overflow: int = 20  # opened beyond ``size`` under load, closed when returned
    timeout: float = 30.0  # seconds a request waits for a connection before failing
    pre_ping: bool = True  # test a connection before use (a restarted server, a dropped link)
    recycle: int = 1800  # seconds after which a connection is replaced; -1: never
    # psycopg prepares a statement run 5 times on a connection; behind PgBouncer in
    # transaction mode the next transaction may run on another server connection, which
    # does not know it: False switches preparing off (prepare_threshold=None).
    prepared_statements: bool = True


def make_engine(url: str, pool: PoolOptions = PoolOptions()) -> Engine:
    if url.startswith("sqlite"):
        _create_sqlite_file_private(url)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        connect_args: dict[str, Any] = {}
        if not pool.prepared_statements and make_url(url).get_driver_name() == "psycopg":
            connect_args["prepare_threshold"] = None
        engine = create_engine(
            url,
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout,
            pool_pre_ping=pool.pre_ping,
            pool_recycle=pool.recycle,
            connect_args=connect_args,
        )
    _track(engine)
    return engine


# Made once per engine, not per unit of work (every request opens one or two), and kept
# on the engine itself: a cache beside it would keep disposed engines (tests make one per
# test) alive through the values' references to them.
_READ_ONLY_ENGINE = "_billbyte_read_only_engine"
_SESSION_FACTORY = "_billbyte_session_factory"


def read_only_engine(engine: Engine) -> Engine:
    """The same engine and pool, whose transactions are readers (deferred on SQLite)."""
    found: Engine | None = getattr(engine, _READ_ONLY_ENGINE, None)
    if found is None:
        found = engine.execution_options(**{READ_ONLY: True})
        setattr(engine, _READ_ONLY_ENGINE, found)
    return found


def engine_for(url: str, pool: PoolOptions = PoolOptions()) -> Engine:
    """The process's one engine (and pool) for ``url`` with these pool options."""
    # why: lru_cache keys on the arguments as given, so ``engine_for(url)`` and
    # ``engine_for(url, PoolOptions())`` would be two engines with two pools.
    return _cached_engine(url, pool)


@lru_cache(maxsize=8)
def _cached_engine(url: str, pool: PoolOptions) -> Engine:
    return make_engine(url, pool)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    found: sessionmaker[Session] | None = getattr(engine, _SESSION_FACTORY, None)
    if found is None:
        found = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
        setattr(engine, _SESSION_FACTORY, found)
    return found
