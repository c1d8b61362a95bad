"""Database: engine, ORM base and column types, Unit of Work, migrations."""

from billbyte.db.base import Base
from billbyte.db.uow import UnitOfWork

__all__ = ["Base", "UnitOfWork"]
