from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class Msp(Base):
    __tablename__ = "msps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msp"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
