"""Unit of Work: one transaction per request or job.

Enter, do the work, ``commit()`` explicitly; leaving without commit (or on an exception)
rolls everything back, which is how "nothing partial" is made structural.

``UnitOfWork(engine, read_only=True)`` is a reader: on SQLite it begins a deferred (WAL
reader) transaction, so it never waits for a writer's ``BEGIN IMMEDIATE`` lock, and it refuses
to commit. Read-only requests (GET, HEAD, ``/healthz``) use it.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from billbyte.db.engine import read_only_engine, session_factory


class ReadOnlyUnitOfWork(RuntimeError):
    """A read-only unit of work was asked to commit."""


class UnitOfWork:
    def __init__(self, engine: Engine, *, read_only: bool = False) -> None:
        self._factory = session_factory(read_only_engine(engine) if read_only else engine)
        self.engine = engine
        self.read_only = read_only
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its 'with' block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        # close() rolls back whatever was not committed; unlike rollback() it leaves loaded
        # objects readable (detached), so a service can return what it committed.
        self._session.close()
        self._session = None

    def commit(self) -> None:
        if self.read_only:
            # A deferred reader that writes would upgrade its lock mid-transaction (and can
            # fail with SQLITE_BUSY_SNAPSHOT): writes belong in a writer unit of work.
            raise ReadOnlyUnitOfWork("A read-only unit of work cannot commit.")
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
