"""What a running process holds: settings, the engine, the secret key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from billbyte.db.engine import PoolOptions, engine_for
from billbyte.db.uow import UnitOfWork
from billbyte.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    secret_key: str

    def uow(self, *, read_only: bool = False) -> UnitOfWork:
        return UnitOfWork(self.engine, read_only=read_only)


def build_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or get_settings()
    return Runtime(
        settings=settings,
        engine=engine_for(settings.effective_database_url, pool_options(settings)),
        secret_key=settings.effective_secret_key(),
    )


def pool_options(settings: Settings) -> PoolOptions:
    """The ``BILLBYTE_DB_POOL_*`` settings as the engine takes them."""
    return PoolOptions(
        size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        timeout=settings.db_pool_timeout,
        pre_ping=settings.db_pool_pre_ping,
        recycle=settings.db_pool_recycle,
        prepared_statements=settings.db_prepared_statements,
    )
