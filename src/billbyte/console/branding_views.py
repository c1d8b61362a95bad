"""The branding page's data: the MSP's brand through tenancy's service (admin writes,
audited), and the logo as stored (read in bounded chunks from the upload)."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from billbyte.auth.subject import AuthSubject
from billbyte.console.common import text
from billbyte.kit.errors import InvalidInput, NotFound
from billbyte.tenancy import repository, service
from billbyte.tenancy.service import MAX_LOGO_BYTES, BrandSettings

FIELDS = ("display_name", "primary_colour", "support_email", "support_phone", "support_url")


def values(session: Session, msp_id: str) -> dict[str, str]:
    """The brand form's values as stored ('' where not set)."""
    row = service.brand_row(session, msp_id)
    return {name: (getattr(row, name) or "") if row else "" for name in FIELDS}


def typed(form: FormData) -> dict[str, str]:
    return {name: text(form, name) for name in FIELDS}


def save(session: Session, subject: AuthSubject, form: FormData) -> None:
    service.set_brand(session, subject, BrandSettings(**typed(form)))


def read_bounded(upload: object, limit: int = MAX_LOGO_BYTES) -> bytes:
    """The uploaded file's bytes, reading at most one byte more than ``limit`` (so that an
    oversized file is recognised without reading it whole)."""
    if not isinstance(upload, UploadFile):
        raise InvalidInput("Choose a logo file to upload.", field="logo")
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(
            f"The logo is larger than {limit // 1024} KB.", field="logo", code="logo_too_large"
        )
    return data


def upload(session: Session, subject: AuthSubject, form: FormData) -> None:
    subject.require_admin()
    service.set_logo(session, subject, read_bounded(form.get("logo")))


def remove(session: Session, subject: AuthSubject) -> None:
    service.remove_logo(session, subject)


def logo(session: Session, msp_id: str) -> tuple[bytes, str]:
    found = repository.logo_of(session, msp_id)
    if found is None:
        raise NotFound("No logo.", code="logo_not_found")
    return found
