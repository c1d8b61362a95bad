"""Unit of Work: one transaction per request or job.

Enter, do the work, ``commit()`` explicitly; leaving without commit (or on an exception)
rolls everything back, which is how "nothing partial" is made structural.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from billbyte.db.engine import session_factory


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self._factory = session_factory(engine)
        self.engine = engine
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
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
