"""MSPs, users and API keys: operator operations (CLI) and the MSP's own key management."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth import web_sessions
from billbyte.auth.models import ApiKey, MspUser
from billbyte.auth.roles import Role
from billbyte.auth.subject import KEY_PREFIX, AuthSubject
from billbyte.kit import identifiers
from billbyte.kit.clock import utcnow
from billbyte.kit.crypto import hash_secret
from billbyte.kit.errors import Conflict, InvalidInput, NotFound
from billbyte.kit.repository import get_owned
from billbyte.tenancy import repository
from billbyte.tenancy.models import Msp, MspBillingProfile, MspBrand, MspLogoVersion


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the full token, shown once

    @property
    def token(self) -> str:
        return self.secret


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(
            f"Unknown role {value!r}; expected one of {allowed}.", code="unknown_role"
        ) from None


def create_msp(session: Session, name: str) -> tuple[Msp, IssuedKey]:
    name = name.strip()
    if not name:
        raise InvalidInput("An MSP needs a name.")
    msp = Msp(name=name)
    session.add(msp)
    session.flush()
    subject = AuthSubject(msp_id=msp.id, actor="cli", role=Role.ADMIN)
    record(session, subject, "msp.created", "msp", msp.id, before=None, after={"name": name})
    issued = issue_api_key(session, subject, name="admin", role=Role.ADMIN.value)
    return msp, issued


def get_msp(session: Session, msp_id: str) -> Msp:
    msp = session.get(Msp, msp_id)
    if msp is None:
        raise NotFound(f"No MSP {msp_id!r}.")
    return msp


def list_msps(session: Session) -> list[Msp]:
    return list(session.scalars(select(Msp).order_by(Msp.id)))


def add_user(session: Session, subject: AuthSubject, email: str, role: str) -> MspUser:
    address = email.strip().lower()
    local, _, domain = address.partition("@")
    if not local or "." not in domain or " " in address:
        raise InvalidInput(f"{email!r} is not an e-mail address.", field="email")
    taken = session.scalar(
        select(MspUser.id).where(MspUser.msp_id == subject.msp_id, MspUser.email == address)
    )
    if taken:
        raise Conflict(f"{address} is already a user of this MSP.", code="user_exists")
    user = MspUser(msp_id=subject.msp_id, email=address, role=_role(role).value)
    session.add(user)
    session.flush()
    record(
        session,
        subject,
        "user.created",
        "user",
        user.id,
        before=None,
        after={"email": user.email, "role": user.role},
    )
    return user


def list_users(session: Session, msp_id: str) -> list[MspUser]:
    return list(
        session.scalars(select(MspUser).where(MspUser.msp_id == msp_id).order_by(MspUser.id))
    )


def issue_api_key(session: Session, subject: AuthSubject, *, name: str, role: str) -> IssuedKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "x").replace("-", "y")
    key = ApiKey(
        msp_id=subject.msp_id,
        name=name,
        role=_role(role).value,
        prefix=prefix,
        secret_hash=hash_secret(secret),
    )
    session.add(key)
    session.flush()
    record(
        session,
        subject,
        "api_key.created",
        "api_key",
        key.id,
        before=None,
        after={"name": name, "role": key.role, "prefix": prefix},
    )
    return IssuedKey(key=key, secret=f"{KEY_PREFIX}{prefix}_{secret}")


def list_api_keys(session: Session, msp_id: str) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.msp_id == msp_id).order_by(ApiKey.id)))


def revoke_api_key(session: Session, subject: AuthSubject, key_id: str) -> ApiKey:
    key = get_owned(session, ApiKey, subject.msp_id, key_id, what="API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record(
            session,
            subject,
            "api_key.revoked",
            "api_key",
            key.id,
            before={"revoked": False},
            after={"revoked": True},
        )
    return key


def get_user(session: Session, msp_id: str, user_id: str) -> MspUser:
    return get_owned(session, MspUser, msp_id, user_id, what="user")


def sign_in_link(session: Session, subject: AuthSubject, user_id: str, public_url: str) -> str:
    """A one-time link where a staff member sets their console password (an invitation for
    a new user, a reset for one who forgot it or is locked out). Shown once; only the
    newest link works."""
    user = get_user(session, subject.msp_id, user_id)
    token = web_sessions.issue_reset(session, web_sessions.CONSOLE, user, subject.actor)
    record(session, subject, "user.sign_in_link_issued", "user", user.id, before=None, after=None)
    return f"{public_url}/console/reset/{token}"


# --- staff users: disable, enable, role (admin only) ------------------------------------------


def _other_user(session: Session, subject: AuthSubject, user_id: str) -> MspUser:
    subject.require_admin()
    user = get_user(session, subject.msp_id, user_id)
    if subject.actor.endswith(f":{user.id}"):
        raise Conflict("You cannot disable yourself or change your own role.", code="own_account")
    return user


def set_user_disabled(
    session: Session, subject: AuthSubject, user_id: str, disabled: bool
) -> MspUser:
    """Disable (every open console session of the user ends) or enable a staff user."""
    user = _other_user(session, subject, user_id)
    if (user.disabled_at is not None) != disabled:
        user.disabled_at = utcnow() if disabled else None
        if disabled:
            web_sessions.sign_out_everywhere(session, web_sessions.CONSOLE, user.id)
        record(
            session,
            subject,
            "user.disabled" if disabled else "user.enabled",
            "user",
            user.id,
            before={"disabled": not disabled},
            after={"disabled": disabled},
        )
    return user


def set_user_role(session: Session, subject: AuthSubject, user_id: str, role: str) -> MspUser:
    user = _other_user(session, subject, user_id)
    new_role = _role(role).value
    if user.role != new_role:
        before = {"role": user.role}
        user.role = new_role
        record(
            session,
            subject,
            "user.role_changed",
            "user",
            user.id,
            before=before,
            after={"role": new_role},
        )
    return user


# --- the MSP's brand -------------------------------------------------------------------------

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_LOGO_BYTES = 256 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class BrandSettings:
    """What an admin sets; empty text means "not set" (the defaults apply)."""

    display_name: str = ""
    primary_colour: str = ""
    support_email: str = ""
    support_phone: str = ""
    support_url: str = ""


def brand_row(session: Session, msp_id: str) -> MspBrand | None:
    return session.get(MspBrand, msp_id)


def _brand_snapshot(row: MspBrand | None) -> dict[str, object]:
    if row is None:
        return {}
    return {
        "display_name": row.display_name,
        "primary_colour": row.primary_colour,
        "support_email": row.support_email,
        "support_phone": row.support_phone,
        "support_url": row.support_url,
        "logo_version": row.logo_version,
    }


def _checked_settings(data: BrandSettings) -> dict[str, str | None]:
    name = data.display_name.strip()
    colour = data.primary_colour.strip()
    email = data.support_email.strip()
    phone = data.support_phone.strip()
    url = data.support_url.strip()
    if len(name) > 200:
        raise InvalidInput("The display name has at most 200 characters.", field="display_name")
    if colour and not HEX_COLOUR.match(colour):
        raise InvalidInput(
            f"{colour[:20]!r} is not a colour: use the #rrggbb form, e.g. #1f4e79.",
            field="primary_colour",
            code="invalid_colour",
        )
    if email:
        local, _, domain = email.partition("@")
        if len(email) > 320 or not local or "." not in domain or any(c.isspace() for c in email):
            raise InvalidInput(f"{email[:80]!r} is not an e-mail address.", field="support_email")
    if len(phone) > 50 or (phone and not re.fullmatch(r"[0-9+() ./-]+", phone)):
        raise InvalidInput(
            "A phone number has at most 50 characters: digits, spaces and + ( ) . / -.",
            field="support_phone",
        )
    if url:
        # Only ever shown as a link, never fetched by BillByte: no outbound guard needed.
        parts = urlsplit(url)
        if (
            len(url) > 500
            or parts.scheme != "https"
            or not parts.hostname
            or parts.username is not None
            or any(c.isspace() or c in "<>\"'\\" for c in url)
        ):
            raise InvalidInput(
                "The support URL must be an https:// address (at most 500 characters).",
                field="support_url",
                code="invalid_support_url",
            )
    return {
        "display_name": name or None,
        "primary_colour": colour.lower() or None,
        "support_email": email.lower() or None,
        "support_phone": phone or None,
        "support_url": url or None,
    }


def _brand_for_update(session: Session, subject: AuthSubject) -> MspBrand:
    get_msp(session, subject.msp_id)
    row = brand_row(session, subject.msp_id)
    if row is None:
        row = MspBrand(msp_id=subject.msp_id, logo_version=0)
        session.add(row)
    return row


def set_brand(session: Session, subject: AuthSubject, data: BrandSettings) -> MspBrand:
    """Replace the brand's texts and colour (admin); audited."""
    subject.require_admin()
    values = _checked_settings(data)
    before = _brand_snapshot(brand_row(session, subject.msp_id))
    row = _brand_for_update(session, subject)
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    after = _brand_snapshot(row)
    if after != before:
        record(
            session,
            subject,
            "brand.updated",
            "msp",
            subject.msp_id,
            before=before or None,
            after=after,
        )
    return row


def logo_type(data: bytes) -> str:
    """The content type a logo's magic bytes prove, or a 422 (only PNG and JPEG)."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    raise InvalidInput(
        "The logo must be a PNG or JPEG image.", field="logo", code="unsupported_logo"
    )


def set_logo(session: Session, subject: AuthSubject, data: bytes) -> MspBrand:
    subject.require_admin()
    if not data:
        raise InvalidInput("Choose a logo file to upload.", field="logo")
    if len(data) > MAX_LOGO_BYTES:
        raise InvalidInput(
            f"The logo is larger than {MAX_LOGO_BYTES // 1024} KB.",
            field="logo",
            code="logo_too_large",
        )
    content_type = logo_type(data)
    row = _brand_for_update(session, subject)
    row.logo = data
    row.logo_content_type = content_type
    row.logo_version = (row.logo_version or 0) + 1
    # kept for the invoices finalized with this logo (``repository.logo_version_of``)
    session.add(
        MspLogoVersion(
            msp_id=subject.msp_id, version=row.logo_version, content_type=content_type, data=data
        )
    )
    session.flush()
    record(
        session,
        subject,
        "brand.logo_updated",
        "msp",
        subject.msp_id,
        before=None,
        after={
            "content_type": content_type,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "logo_version": row.logo_version,
        },
    )
    return row


def remove_logo(session: Session, subject: AuthSubject) -> None:
    subject.require_admin()
    row = brand_row(session, subject.msp_id)
    if row is None or row.logo_content_type is None:
        return
    row.logo = None
    row.logo_content_type = None
    row.logo_version += 1
    record(
        session,
        subject,
        "brand.logo_removed",
        "msp",
        subject.msp_id,
        before=None,
        after={"logo_version": row.logo_version},
    )


# --- the MSP's billing profile (the seller on its invoices) ---------------------------------

PROFILE_TEXTS: dict[str, int] = {  # field: maximum length
    "legal_name": 200,
    "address_line1": 200,
    "address_line2": 200,
    "postal_code": 20,
    "city": 100,
    "registration": 200,
    "phone": 50,
    "bank_name": 200,
    "footer_text": 1000,
}
PROFILE_FIELDS = (
    "legal_name",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "tax_id",
    "registration",
    "email",
    "phone",
    "bank_name",
    "iban",
    "bic",
    "payment_terms_days",
    "footer_text",
)
DEFAULT_PAYMENT_TERMS_DAYS = 30
MAX_PAYMENT_TERMS_DAYS = 365


def billing_profile(session: Session, msp_id: str) -> MspBillingProfile:
    """The stored profile, or an unsaved empty one (payment terms of 30 days)."""
    found = repository.billing_profile_of(session, msp_id)
    return found or MspBillingProfile(msp_id=msp_id, payment_terms_days=DEFAULT_PAYMENT_TERMS_DAYS)


def _profile_snapshot(row: MspBillingProfile | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {name: getattr(row, name) for name in PROFILE_FIELDS}


def _payment_terms(value: object) -> int:
    if value is None or value == "":
        return DEFAULT_PAYMENT_TERMS_DAYS
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise InvalidInput(
                "payment_terms_days: a whole number of days from 0 to 365.",
                field="payment_terms_days",
            )
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(
            "payment_terms_days: a whole number of days from 0 to 365.",
            field="payment_terms_days",
        )
    if not 0 <= value <= MAX_PAYMENT_TERMS_DAYS:
        raise InvalidInput(
            f"payment_terms_days: {value} is not between 0 and {MAX_PAYMENT_TERMS_DAYS}.",
            field="payment_terms_days",
        )
    return value


def checked_profile(values: Mapping[str, object]) -> dict[str, Any]:
    """The profile to store from what the caller sent: texts trimmed (empty: not set),
    the country an ISO code, the VAT id, IBAN and BIC valid and compact."""
    unknown = sorted(set(values) - set(PROFILE_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown field {unknown[0]!r}.", field=unknown[0])

    def text_of(name: str) -> str | None:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name}: must be text.", field=name)
        return identifiers.blank_to_none(value)

    out: dict[str, Any] = {}
    for name, limit in PROFILE_TEXTS.items():
        value = text_of(name)
        if value is not None and len(value) > limit:
            raise InvalidInput(f"{name}: at most {limit} characters.", field=name)
        out[name] = value
    out["country"] = identifiers.country(text_of("country"))
    out["tax_id"] = identifiers.vat_id(text_of("tax_id"), out["country"])
    out["email"] = identifiers.email(text_of("email"), "email")
    out["iban"] = identifiers.iban(text_of("iban"))
    out["bic"] = identifiers.bic(text_of("bic"))
    out["payment_terms_days"] = _payment_terms(values.get("payment_terms_days"))
    if out["phone"] and not re.fullmatch(r"[0-9+() ./-]+", out["phone"]):
        raise InvalidInput(
            "phone: digits, spaces and + ( ) . / - only.", field="phone", code="invalid_phone"
        )
    return out


def set_billing_profile(
    session: Session, subject: AuthSubject, values: Mapping[str, object]
) -> MspBillingProfile:
    """Replace the MSP's seller details (admin or billing); audited. A field left out is
    cleared (payment terms: back to 30 days)."""
    subject.require_write()
    checked = checked_profile(values)
    get_msp(session, subject.msp_id)
    row = repository.billing_profile_of(session, subject.msp_id)
    before = _profile_snapshot(row)
    if row is None:
        row = MspBillingProfile(msp_id=subject.msp_id)
        session.add(row)
    for name, value in checked.items():
        setattr(row, name, value)
    session.flush()
    after = _profile_snapshot(row)
    if after != before:
        record(
            session,
            subject,
            "billing_profile.updated",
            "msp",
            subject.msp_id,
            before=before or None,
            after=after,
        )
    return row
