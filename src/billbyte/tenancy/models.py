from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class Msp(Base):
    __tablename__ = "msps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msp"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MspUser(Base):
    __tablename__ = "msp_users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("usr"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
