from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class PortalUserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    name: str = Field(default="", max_length=200)
    locale: str | None = Field(
        default=None, max_length=20, description="e.g. de_DE; default: the customer's locale."
    )


class PortalUserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "portal_user"
    customer_id: str
    email: str
    name: str
    locale: str | None
    created_at: datetime
    last_sign_in_at: datetime | None
    locked_until: datetime | None
    disabled_at: datetime | None


class PortalUserInvited(PortalUserOut):
    sign_in_link: str = Field(
        description="One-time link where the user sets a password (valid 3 days). Shown once."
    )


class SignInLink(BaseModel):
    object: str = "sign_in_link"
    sign_in_link: str
