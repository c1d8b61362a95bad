"""What other features read of tenancy: an MSP's brand, as the portal and console show it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from billbyte.tenancy.models import Msp, MspBillingProfile, MspBrand, MspLogoVersion
from billbyte.web.branding import DEFAULT_COLOUR, Brand


def logo_url(msp_id: str, version: int) -> str:
    # The version makes every upload a new URL: a cached old logo is never shown.
    return f"/brand/{msp_id}/logo?v={version}"


def brand_of(session: Session, msp_id: str | None) -> Brand:
    """The MSP's brand; BillByte's neutral one for an unknown or missing MSP (a sign-in page
    reached without a brand link)."""
    msp = session.get(Msp, msp_id) if msp_id else None
    if msp is None:
        return Brand()
    row = session.get(MspBrand, msp.id)
    if row is None:
        return Brand(name=msp.name)
    return Brand(
        name=row.display_name or msp.name,
        primary_colour=row.primary_colour or DEFAULT_COLOUR,
        logo_url=logo_url(msp.id, row.logo_version) if row.logo_content_type else None,
        support_email=row.support_email,
        support_phone=row.support_phone,
        support_url=row.support_url,
    )


def logo_of(session: Session, msp_id: str) -> tuple[bytes, str] | None:
    """The stored logo and its content type, or None."""
    row = session.get(MspBrand, msp_id)
    if row is None or row.logo is None or row.logo_content_type is None:
        return None
    return row.logo, row.logo_content_type


def current_logo_version(session: Session, msp_id: str) -> int | None:
    """The version of the logo the brand shows now, or None without a logo (the image
    itself is not read)."""
    row = session.get(MspBrand, msp_id)
    if row is None or row.logo_content_type is None:
        return None
    return row.logo_version


def logo_version_of(session: Session, msp_id: str, version: int) -> tuple[bytes, str] | None:
    """A logo the MSP uploaded (``logo_version``), even if replaced or removed since, and
    its content type; None if there is no such version."""
    row = session.get(MspLogoVersion, (msp_id, version))
    if row is None:
        return None
    return row.data, row.content_type


def billing_profile_of(session: Session, msp_id: str) -> MspBillingProfile | None:
    """The MSP's seller details on invoices, or None while it never set them."""
    return session.get(MspBillingProfile, msp_id)
