"""What a running process holds: settings, the engine, the secret key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from billbyte.db.engine import engine_for
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
        engine=engine_for(settings.effective_database_url),
        secret_key=settings.effective_secret_key(),
    )
