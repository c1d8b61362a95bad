from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class PartnerAccount(Base):
    __tablename__ = "partner_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("pa"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    vendor: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(200))
    # The vendor's id of the partner account (AWS payer id, Partner Center tenant, ...).
    vendor_account_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    credentials_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False)
    endpoint_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The MSP's own discount from the vendor, as a percentage of list price.
    partner_discount_percent: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    discount_terms: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def has_credentials(self) -> bool:
        return self.credentials_encrypted is not None
